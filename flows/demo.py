"""The demo: sample inputs, ERA ingest, ERA x MODIS join, ML-ready set, training, prediction, on the embedded defaults."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.dataset import dataset_flow
from flows.ingest import ingest_flow
from flows.join import join_flow
from flows.predict import predict_flow
from flows.sample import sample_flow
from flows.train import train_flow


@flow(name="ml4l-demo", log_prints=True)
def demo_flow(recipe: str = "demo", lake_root: str | None = None, lake_block: str | None = None) -> dict[str, Any]:
    """Write the sample inputs, ingest, join, build the ML-ready set, train, predict the test months.

    Returns the lake root, the stores and each step's summary.
    """
    root = sample_flow(recipe=recipe, lake_root=lake_root, lake_block=lake_block)
    stores = ingest_flow(recipe=recipe, lake_root=root)
    joined = join_flow(recipe=recipe, lake_root=root)
    ml_ready = dataset_flow(recipe=recipe, lake_root=root)
    trained = train_flow(recipe=recipe, lake_root=root)
    predicted = predict_flow(recipe=recipe, months=ml_ready["months"]["test"], lake_root=root)
    return {"lake": root, "stores": stores, "joined": joined, "ml_ready": ml_ready, "train": trained, "predictions": predicted}
