"""The demo: sample inputs, then the ERA ingest, on the embedded defaults."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest_flow
from flows.sample import sample_flow


@flow(name="ml4l-demo", log_prints=True)
def demo_flow(recipe: str = "demo", lake_root: str | None = None, lake_block: str | None = None) -> dict[str, str]:
    """Write the sample inputs and ingest them; returns the store paths."""
    root = sample_flow(recipe=recipe, lake_root=lake_root, lake_block=lake_block)
    return ingest_flow(recipe=recipe, lake_root=root)
