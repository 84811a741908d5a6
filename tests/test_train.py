"""Training: MLflow run with the named metrics, registry alias, and a reloaded champion that reproduces them."""

from __future__ import annotations

import numpy as np
import pytest

from ml4l.config import SplitConfig
from ml4l.dataset import TARGET, build_ml_ready, read_normalisation, read_split
from ml4l.lake import Lake
from ml4l.train import CHAMPION, TrainConfig, error_metrics, train_and_log

NAMED = ["test_mae", "test_rmse", "test_bias", "baseline_skt_test_mae", "baseline_skt_test_rmse",
         "baseline_linear_test_mae", "baseline_linear_test_rmse"]


@pytest.fixture
def ml_lake(joined_lake: Lake) -> Lake:
    build_ml_ready(joined_lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02")))
    return joined_lake


def test_run_is_logged_registered_and_reproducible(ml_lake: Lake) -> None:
    import mlflow

    first = train_and_log(ml_lake, config=TrainConfig(epochs=3, batch_size=256, learning_rate=1e-3), model_name="tiny")
    assert set(NAMED) <= set(first.metrics) and first.champion and first.version == "1"
    run = mlflow.get_run(first.run_id)
    assert set(NAMED) <= set(run.data.metrics)
    history = mlflow.MlflowClient().get_metric_history(first.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1, 2]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(first.run_id, "dataset")}
    assert artifacts == {"dataset/normalisation.json", "dataset/features.json"}

    champion = mlflow.pyfunc.load_model(f"models:/tiny@{CHAMPION}")
    test = read_split(ml_lake, "test")
    features = read_normalisation(ml_lake)["features"]
    predicted = np.asarray(champion.predict(test[features].to_numpy(np.float32))).ravel()
    reproduced = error_metrics(test[TARGET].to_numpy(), predicted)
    assert reproduced["mae"] == pytest.approx(first.metrics["test_mae"], rel=1e-5)
    assert reproduced["rmse"] == pytest.approx(first.metrics["test_rmse"], rel=1e-5)

    worse = train_and_log(ml_lake, config=TrainConfig(epochs=1, batch_size=256, learning_rate=1e-6, seed=1), model_name="tiny")
    assert worse.metrics["test_mae"] > first.metrics["test_mae"]
    assert not worse.champion
    assert str(mlflow.MlflowClient().get_model_version_by_alias("tiny", CHAMPION).version) == first.version
