"""The LST pipeline's library stages on a lake that is no local folder (``memory://``), against the same stages on disk.

Ingest, join, the ML-ready set, training and prediction run on ``memory://`` and give what the local
lake gives. The Prefect flows and their Great Expectations gates are not part of this test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

from ml4l.config import Recipe, SplitConfig, TrainConfig
from ml4l.era_store import create_timevar_store, ingest_constants, ingest_month
from ml4l.join import join_month, read_joined
from ml4l.lake import Lake
from ml4l.usecases.lst.dataset import SPLITS, build_ml_ready, read_split
from ml4l.usecases.lst.predict import predict_month, read_predictions
from ml4l.usecases.lst.train import CHAMPION, EXPERIMENT, train_and_log

SPLIT = SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02"))


@pytest.fixture
def memory_lake(sample_lake: Lake) -> Iterator[Lake]:
    memory = fsspec.filesystem("memory")
    memory.put(sample_lake.raw, "/ml4l-memory-lake/raw", recursive=True)
    yield Lake.at("memory://ml4l-memory-lake")
    memory.rm("/ml4l-memory-lake", recursive=True)


def _add_december(lake: Lake) -> None:
    """January shifted back 31 days as a third month, as ``tests/conftest.py``'s ``joined_lake`` does."""
    december = read_joined(lake, "2019-01")
    december["time"] = december["time"] - pd.Timedelta(days=31)
    lake.fs.makedirs(lake.joined_month("2018-12"), exist_ok=True)
    with lake.fs.open(lake.joined_table("2018-12"), "wb") as out:
        december.to_parquet(out, index=False)


def test_the_lst_stages_on_memory_give_what_they_give_on_disk(
    memory_lake: Lake, joined_lake: Lake, tiny_recipe: Recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)  # a remote root taken for a local path would show up here as a "memory:" folder
    create_timevar_store(memory_lake, tiny_recipe.grid, tiny_recipe.period)
    ingest_constants(memory_lake)
    for month in tiny_recipe.period.months:
        ingest_month(memory_lake, month)
        join_month(memory_lake, month, tiny_recipe.join)
        pd.testing.assert_frame_equal(read_joined(memory_lake, month), read_joined(joined_lake, month))
    _add_december(memory_lake)
    build_ml_ready(memory_lake, SPLIT)
    build_ml_ready(joined_lake, SPLIT)
    for split in SPLITS:
        pd.testing.assert_frame_equal(read_split(memory_lake, split), read_split(joined_lake, split))

    # MLflow stores artifacts on file, s3, gs, ... but not memory://: the experiment keeps them on disk
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri())
    trained = train_and_log(memory_lake, config=TrainConfig(epochs=1, batch_size=256), model_name="memory", uri=uri, join=tiny_recipe.join)
    assert np.isfinite(trained.metrics["test_mae"]) and trained.champion
    model = f"models:/memory@{CHAMPION}"
    remote = predict_month(memory_lake, "2019-02", model, "memory", uri=uri)
    local = predict_month(joined_lake, "2019-02", model, "memory", uri=uri)
    assert remote.path == memory_lake.prediction("memory", "2019-02") and remote.land_cells == local.land_cells > 0
    # the same model on the same features: equal up to float32 rounding of a different summation order
    np.testing.assert_allclose(
        read_predictions(memory_lake, "memory", "2019-02")["lst"].values,
        read_predictions(joined_lake, "memory", "2019-02")["lst"].values,
        rtol=4 * np.finfo(np.float32).eps,
    )
    assert not (tmp_path / "memory:").exists()
