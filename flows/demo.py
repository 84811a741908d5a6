"""The demo: sample inputs, the ERA ingest, then the ERA x MODIS join, on the embedded defaults."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.ingest import ingest_flow
from flows.join import join_flow
from flows.sample import sample_flow


@flow(name="ml4l-demo", log_prints=True)
def demo_flow(recipe: str = "demo", lake_root: str | None = None, lake_block: str | None = None) -> dict[str, Any]:
    """Write the sample inputs, ingest them and join them; returns the lake root, store paths and join summaries."""
    root = sample_flow(recipe=recipe, lake_root=lake_root, lake_block=lake_block)
    stores = ingest_flow(recipe=recipe, lake_root=root)
    return {"lake": root, "stores": stores, "joined": join_flow(recipe=recipe, lake_root=root)}
