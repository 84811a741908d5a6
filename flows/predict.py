"""Predict flow: the registered champion over every land cell and hour of months in the ERA store, into Zarr."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.lake import resolve_lake
from blocks.mlflow import resolve_tracking
from flows.common import MonthParameter, NameParameter, months_of, settle
from ml4l.usecases.lst.train import CHAMPION
from tasks.train import predict_month


@flow(name="ml4l-predict", log_prints=True)
def predict_flow(
    recipe: str = "demo",
    months: list[MonthParameter] | None = None,
    model_name: NameParameter | None = None,
    alias: str = CHAMPION,
    lake_root: str | None = None,
    lake_block: str | None = None,
    mlflow_block: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Predict each month with ``models:/<model_name>@<alias>``; returns each month's report."""
    lake = resolve_lake(lake_root, lake_block)
    uri, registered = resolve_tracking(lake, mlflow_block, model_name)
    model_uri = f"models:/{registered}@{alias}"
    futures = {m: predict_month.submit(lake.root, m, model_uri, registered, uri) for m in months_of(recipe, months)}
    settle(futures)
    reports = {m: f.result() for m, f in futures.items()}
    for month, report in reports.items():
        print(f"predicted {month}: {report['hours']} h x {report['land_cells']} land cells, mean {report['mean_lst']:.1f} K -> {report['path']}")
    return reports
