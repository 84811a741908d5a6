"""MLflow runs for every use case: one experiment per use case (``ml4l-<name>``), store under the lake by default."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from ml4l.lake import Lake


def tracking_uri(lake: Lake) -> str:
    """The default MLflow store: SQLite under ``<lake>/mlflow``; a lake that is not a local folder needs a tracking URI instead.

    The database's tables are created once, under the lake's lock: two first runs at once (a backfill's months)
    otherwise race in MLflow's schema migration ("No such index ...").
    """
    directory = lake.mlflow_folder
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    ready = directory / ".schema-ready"
    if not ready.exists():
        with lake.lock("mlflow-schema"):
            if not ready.exists():
                directory.mkdir(parents=True, exist_ok=True)
                _create_schema(uri, lake.mlflow_artifacts)
                ready.touch()
    return uri


def _create_schema(uri: str, artifacts: str) -> None:
    """Create (or upgrade) the tracking and model-registry tables of the SQLite store at ``uri``."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    TrackingStore(uri, default_artifact_root=artifacts)
    RegistryStore(uri)


def experiment_id(lake: Lake, name: str, uri: str) -> str:
    """The experiment ``name`` in the store at ``uri``.

    It is created with its artifacts under ``<lake>/mlflow/artifacts``, unless a server keeps them.
    """
    import mlflow

    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    # a tracking server keeps its own artifact store; a database or file store keeps them beside the lake's data
    artifacts = None if uri.startswith(("http:", "https:", "databricks")) else lake.mlflow_artifacts
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
