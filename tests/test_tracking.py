"""The lake's default MLflow store under concurrent first use."""

from __future__ import annotations

import multiprocessing
from pathlib import Path


def _first_use(root: str) -> list[str]:
    import mlflow

    from ml4l.lake import Lake
    from ml4l.ml.tracking import tracking_uri, use_store

    uri = tracking_uri(Lake(root))
    use_store(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.search_registered_models()
    return [e.name for e in client.search_experiments()]


def test_first_runs_started_at_once_share_one_store(tmp_path: Path) -> None:
    """A backfill's months may open a fresh lake's store together; without the schema lock MLflow's migrations race."""
    root = str(tmp_path / "lake")
    Path(root).mkdir()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        experiments = pool.map(_first_use, [root] * 4)
    assert all(names == ["Default"] for names in experiments)
    assert (tmp_path / "lake" / "mlflow" / "mlflow.db.schema-ready").exists()
