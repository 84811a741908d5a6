"""Training flow: the recipe's ML-ready set, a Keras MLP against the baselines, logged and registered in MLflow."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.lake import resolve_lake
from blocks.mlflow import resolve_tracking
from flows.common import NameParameter
from tasks.train import train_model


@flow(name="ml4l-train", log_prints=True)
def train_flow(
    recipe: str = "demo",
    name: NameParameter = "default",
    model_name: NameParameter | None = None,
    overrides: dict[str, Any] | None = None,
    lake_root: str | None = None,
    lake_block: str | None = None,
    mlflow_block: str | None = None,
) -> dict[str, Any]:
    """Train on ``ml/<name>/`` with the recipe's ``train`` section; ``overrides`` replace some of its keys.

    The run goes to the MLflow store of ``mlflow_block`` (default: SQLite under the
    lake); the model is registered and its alias ``champion`` moved if it beats the
    current champion's test MAE.
    """
    lake = resolve_lake(lake_root, lake_block)
    uri, registered = resolve_tracking(lake, mlflow_block, model_name)
    result = train_model(lake.root, recipe, name, registered, uri, overrides)
    m = result["metrics"]
    print(f"MLflow run {result['run_id']} in {uri}: model {registered} version {result['version']}, champion: {result['champion']}")
    print(f"test MAE {m['test_mae']:.3f} K (skt {m['baseline_skt_test_mae']:.3f}, linear {m['baseline_linear_test_mae']:.3f})")
    return result
