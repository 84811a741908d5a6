"""The demo: sample inputs, the ERA ingest, the ERA x MODIS join, then the ML-ready set, on the embedded defaults."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.dataset import dataset_flow
from flows.ingest import ingest_flow
from flows.join import join_flow
from flows.sample import sample_flow


@flow(name="ml4l-demo", log_prints=True)
def demo_flow(recipe: str = "demo", lake_root: str | None = None, lake_block: str | None = None) -> dict[str, Any]:
    """Write the sample inputs, ingest, join, build the ML-ready set; returns the lake root, stores and summaries."""
    root = sample_flow(recipe=recipe, lake_root=lake_root, lake_block=lake_block)
    stores = ingest_flow(recipe=recipe, lake_root=root)
    joined = join_flow(recipe=recipe, lake_root=root)
    return {"lake": root, "stores": stores, "joined": joined, "ml_ready": dataset_flow(recipe=recipe, lake_root=root)}
