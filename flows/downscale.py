"""Downscaling flows (seed 002): ``downscale-dataset`` (check inputs, build patches and splits),
``downscale-train`` (the seed's MLP against the zero and lapse-rate baselines) and the demo."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.lake import resolve_lake
from ml4l.lake import Lake
from ml4l.ml.tracking import tracking_uri
from ml4l.usecases.downscale.layout import DownscaleLake
from ml4l.usecases.downscale.recipe import SplitKind, load_recipe
from tasks.downscale import build_dataset, check_inputs, train, write_sample


@flow(name="downscale-dataset", log_prints=True)
def downscale_dataset_flow(
    recipe: str | None = None, sample: bool = False, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, Any]:
    """Check the year's LST NetCDF and DEM (quarantined if bad), then build the data set.

    ``recipe`` is a YAML path (default: the demo recipe); ``sample`` writes the sample inputs first.
    """
    lake = resolve_lake(lake_root, lake_block)
    spec = load_recipe(recipe)
    if sample:
        write_sample(lake.root, spec)
    checked = check_inputs(lake.root, spec)
    built = build_dataset(lake.root, spec)
    print(
        f"inputs {spec.sample.year}: {checked['days']} days on {checked['grid'][0]} x {checked['grid'][1]} pixels, "
        f"{checked['expectations']} expectations passed; {built['rows']} patches -> {built['directory']}"
    )
    paths = DownscaleLake(lake)
    return {
        "lake": lake.root,
        "inputs": checked,
        "files": {"lst": paths.lst(spec.sample.year), "dem": paths.dem()},
        **built,
    }


@flow(name="downscale-train", log_prints=True)
def downscale_train_flow(
    recipe: str | None = None,
    split: SplitKind | None = None,
    lake_root: str | None = None,
    lake_block: str | None = None,
    mlflow_block: str | None = None,
) -> dict[str, Any]:
    """Train on the recipe's data set with ``split`` (default: the recipe's, ``day_x_block``); log to ``ml4l-downscale``."""
    lake = resolve_lake(lake_root, lake_block)
    spec = load_recipe(recipe)
    uri = _tracking_uri(lake, mlflow_block)
    result = train(lake.root, spec, split or spec.split.kind, uri)
    m = result["metrics"]
    print(
        f"split {result['split']}: test MSE {m['test_mse']:.4f} K^2 (zero {m['baseline_zero_test_mse']:.4f}, "
        f"lapse rate {m['baseline_lapse_rate_test_mse']:.4f}, oracle {m['oracle_test_mse']:.4f}), gap closed {m['gap_closed']:.3f}, "
        f"MSE improvement {m['mse_improvement_percent']:.1f}%; MLflow run {result['run_id']} in {uri}"
    )
    return {**result, "tracking_uri": uri}


def _tracking_uri(lake: Lake, mlflow_block: str | None) -> str:
    """The saved ``ml4l-mlflow-tracking`` block's store, else the lake's SQLite store."""
    if not mlflow_block:
        return tracking_uri(lake)
    from blocks.mlflow import MLflowTracking  # only then: it imports the LST training stack

    return MLflowTracking.load(mlflow_block).uri(lake)  # type: ignore[union-attr]


@flow(name="downscale-demo", log_prints=True)
def downscale_demo_flow(lake_root: str | None = None) -> dict[str, Any]:
    """Sample inputs, the data set and the headline day x block model on the demo recipe."""
    built = downscale_dataset_flow(sample=True, lake_root=lake_root)
    trained = downscale_train_flow(lake_root=built["lake"])
    outputs = {**built["files"], "dataset": built["directory"], "mlflow": trained["tracking_uri"]}
    return {"metrics": trained["metrics"], "outputs": outputs, "run_id": trained["run_id"]}
