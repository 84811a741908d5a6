"""MLflow runs for every use case: one experiment per use case (``ml4l-<name>``), store under the lake by default."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ml4l.lake import Lake


def tracking_uri(lake: Lake) -> str:
    """The default MLflow store: SQLite under ``<lake>/mlflow``; a lake that is not a local folder needs a tracking URI instead."""
    directory = lake.mlflow_folder
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mlflow.db'}"


def use_store(uri: str) -> None:
    """Make ``uri`` MLflow's tracking URI, its SQLite tables created first (:func:`prepare_store`)."""
    import mlflow

    prepare_store(uri)
    mlflow.set_tracking_uri(uri)


def prepare_store(uri: str) -> None:
    """Create the tables of the SQLite store at ``uri`` once, under a lock beside it; other stores are left to MLflow.

    Two first uses at once (a backfill's months on a fresh lake) otherwise race in MLflow's
    schema migration ("No such index ...").
    """
    if not uri.startswith("sqlite:///"):
        return
    database = Path(uri.removeprefix("sqlite:///"))
    ready = database.with_name(f"{database.name}.schema-ready")
    if ready.exists():
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(f"{database.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # freed when the holder dies
        if not ready.exists():
            from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

            TrackingStore(uri, default_artifact_root=(database.parent / "artifacts").resolve().as_uri())
            RegistryStore(uri)
            ready.touch()


def experiment_id(lake: Lake, name: str, uri: str) -> str:
    """The experiment ``name`` in the store at ``uri``.

    It is created with its artifacts under ``<lake>/mlflow/artifacts``, unless a server keeps them.
    """
    import mlflow

    use_store(uri)
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
