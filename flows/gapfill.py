"""Gap-filling flows (seed 001): ``gapfill-train``, ``gapfill-fill`` and the demo that runs both."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.lake import resolve_lake
from blocks.mlflow import resolve_tracking
from ml4l.usecases.gapfill.recipe import load_recipe
from tasks import gapfill


@flow(name="gapfill-train", log_prints=True)
def gapfill_train_flow(
    recipe: str | None = None,
    lake_root: str | None = None,
    lake_block: str | None = None,
    mlflow_block: str | None = None,
) -> dict[str, Any]:
    """Prepare and validate the cube, then fit the baselines and the MLP and log them in ``ml4l-gapfill``.

    ``recipe`` is a YAML path (``None``: the defaults); it is loaded once and passed by value.
    """
    lake = resolve_lake(lake_root, lake_block)
    spec = load_recipe(recipe)
    uri, _ = resolve_tracking(lake, mlflow_block)
    cube = gapfill.prepare_cube(lake.root, spec)
    gapfill.validate_cube(lake.root, cube, spec.cube.name)
    report = gapfill.train(lake.root, spec, cube, uri)
    m = report["metrics"]
    print(
        f"MLflow run {report['run_id']}: test RMSE {m['test_rmse']:.3f} K "
        f"(linear T2m {m['baseline_linear_t2m_test_rmse']:.3f}, "
        f"per-pixel {m['baseline_per_pixel_linear_test_rmse']:.3f}); "
        f"artificial gaps {m['artificial_gap_test_rmse']:.3f} K"
    )
    return {**report, "cube": cube}


@flow(name="gapfill-fill", log_prints=True)
def gapfill_fill_flow(
    recipe: str | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, Any]:
    """Validate the cube again (it may have changed since training), then fill its land with the recipe's model."""
    lake = resolve_lake(lake_root, lake_block)
    spec = load_recipe(recipe)
    cube = gapfill.prepare_cube(lake.root, spec)
    gapfill.validate_cube(lake.root, cube, spec.cube.name)
    report = gapfill.fill(lake.root, spec, cube)
    print(f"filled {report['filled_cells']} cells ({report['observed_cells']} observed) into {report['path']}")
    return report


@flow(name="gapfill-demo", log_prints=True)
def gapfill_demo_flow(lake_root: str | None = None) -> dict[str, Any]:
    """Train on the sample cube, then fill it; the metrics, outputs and MLflow run of the use case."""
    trained = gapfill_train_flow(lake_root=lake_root)
    filled = gapfill_fill_flow(lake_root=lake_root)
    return {
        "metrics": trained["metrics"],
        "outputs": {
            "cube": trained["cube"],
            "lst_filled": filled["path"],
            **{f"model_{k}": v for k, v in trained["models"].items()},
        },
        "run_id": trained["run_id"],
    }
