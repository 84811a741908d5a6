"""Tasks that train a model and predict with the champion."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact

from ml4l.usecases.lst import predict, train
from ml4l.config import load_recipe
from ml4l.lake import Lake
from ml4l.types import Month
from tasks.retry import IO_TASK_OPTIONS

_SHOWN = ("test", "baseline_skt_test", "baseline_linear_test")


@task(name="train-model", tags=["ml", "train"], task_run_name="train-{model_name}-on-{name}")
def train_model(lake_root: str, recipe: str, name: str, model_name: str, tracking_uri: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train on ``ml/<name>/`` with the recipe's ``train`` section (and ``overrides``); returns the run's summary.

    Not retried: a failed fit repeats itself, and every attempt would leave an MLflow run.
    """
    loaded = load_recipe(recipe)
    config = replace(loaded.train, **(overrides or {}))
    result = train.train_and_log(Lake(lake_root), name, config, model_name, tracking_uri, loaded.join)
    m = result.metrics
    create_table_artifact(
        key=f"train-{model_name}".lower().replace("_", "-"),
        table=[{"model": label, "mae": round(m[f"{p}_mae"], 3), "rmse": round(m[f"{p}_rmse"], 3), "bias": round(m[f"{p}_bias"], 3)}
               for label, p in zip(("MLP", "ERA skt", "linear"), _SHOWN, strict=True)],
        description=f"Test metrics (K) of run {result.run_id}, version {result.version}, champion: {result.champion}",
    )
    if tracking_uri.startswith("http"):
        create_link_artifact(key=f"mlflow-run-{model_name}".lower().replace("_", "-"), link=f"{tracking_uri}/#/experiments/runs/{result.run_id}")
    return result.to_dict()


@task(name="predict-month", tags=["ml", "predict", "io"], task_run_name="predict-{month}", **IO_TASK_OPTIONS)
def predict_month(lake_root: str, month: Month, model_uri: str, model_name: str, tracking_uri: str) -> dict[str, Any]:
    """Predict ``month`` with ``model_uri`` into ``predictions/<model_name>/<month>.zarr``; returns the report."""
    return predict.predict_month(Lake(lake_root), month, model_uri, model_name, tracking_uri).to_dict()
