"""Flows of the assimilation use case (seed 004): ``da-train`` and ``da-assimilate``, and its demo."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.lake import resolve_lake
from blocks.mlflow import resolve_tracking
from ml4l.usecases.assimilation.pipeline import first_test_days
from ml4l.usecases.assimilation.recipe import load_recipe
from tasks.assimilation import assimilate, train_and_score, validate_inputs, write_inputs


@flow(name="da-train", log_prints=True)
def da_train_flow(recipe: str | None = None, lake_root: str | None = None, lake_block: str | None = None,
                  mlflow_block: str | None = None) -> dict[str, Any]:
    """Write the inputs (synthetic fields, stations, pseudo-observations), validate them, train the VAE and score it."""
    lake = resolve_lake(lake_root, lake_block)
    loaded = load_recipe(recipe)
    write_inputs(lake.root, loaded)
    validate_inputs(lake.root)
    uri, _ = resolve_tracking(lake, mlflow_block)
    result = train_and_score(lake.root, loaded, uri)
    print(f"VAE {loaded.model_name}: test RMSE {result['metrics']['test_rmse']:.3f} K, gap closed {result['metrics']['gap_closed']:.3f}")
    return result


@flow(name="da-assimilate", log_prints=True)
def da_assimilate_flow(start: str, end: str, observations: str | None = None, recipe: str | None = None, lake_root: str | None = None,
                       lake_block: str | None = None) -> str:
    """The analysis (mean, spread, members) of the days from ``start`` to ``end`` given an observation table."""
    lake = resolve_lake(lake_root, lake_block)
    validate_inputs(lake.root, observations, fields=False)
    path = assimilate(lake.root, load_recipe(recipe), start, end, observations)
    print(f"analysis {start}..{end}: {path}")
    return path


@flow(name="assimilation-demo", log_prints=True)
def assimilation_demo_flow(lake_root: str | None = None) -> dict[str, Any]:
    """Train and score on the embedded defaults, then analyse the first three test days."""
    trained = da_train_flow(lake_root=lake_root)
    start, end = first_test_days(load_recipe(None))
    analysis = da_assimilate_flow(start=start, end=end, lake_root=lake_root)
    return {"metrics": trained["metrics"], "run_id": trained["run_id"], "outputs": {"generator": trained["generator"], "analysis": analysis}}
