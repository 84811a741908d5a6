"""MLflow runs for every use case: one experiment per use case (``ml4l-<name>``), store under the lake by default."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ml4l.lake import Lake


def tracking_uri(lake: Lake) -> str:
    """The default MLflow store: SQLite under ``<lake>/mlflow``; a lake that is not a local folder needs a tracking URI instead."""
    if not lake.is_local:
        raise ValueError(f"the lake {lake.root} is not a local folder: give an MLflow tracking URI (the ml4l-mlflow-tracking block)")
    directory = Path(lake.root) / "mlflow"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mlflow.db'}"


def experiment_id(lake: Lake, name: str, uri: str) -> str:
    """The experiment ``name`` in the store at ``uri``.

    It is created with its artifacts under ``<lake>/mlflow/artifacts``, unless a server keeps them.
    """
    import mlflow

    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    if uri.startswith(("http:", "https:", "databricks")):
        artifacts = None  # a tracking server keeps its own artifact store
    else:  # a database or file store: artifacts beside the lake's data, on its own filesystem (s3://..., gs://...)
        artifacts = (Path(lake.root) / "mlflow" / "artifacts").resolve().as_uri() if lake.is_local else lake.path("mlflow", "artifacts")
    return str(mlflow.create_experiment(name, artifact_location=artifacts))


@contextlib.contextmanager
def run(lake: Lake, experiment: str, uri: str | None = None, run_name: str | None = None) -> Iterator[Any]:
    """An MLflow run in ``experiment``; ``uri`` defaults to the lake's SQLite store."""
    import mlflow

    uri = uri or tracking_uri(lake)
    with mlflow.start_run(experiment_id=experiment_id(lake, experiment, uri), run_name=run_name) as active:
        yield active


def log_recipe(recipe: Any) -> None:
    """Log a pydantic recipe as flat params and as ``recipe.json`` in the active run."""
    import mlflow

    data = recipe.model_dump(mode="json") if hasattr(recipe, "model_dump") else dict(recipe)
    mlflow.log_params({f"recipe.{k}": v for k, v in _flatten(data).items()})
    mlflow.log_text(json.dumps(data, indent=2, sort_keys=True), "recipe.json")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:500]
    return out
