"""Prediction: the champion over every land cell and hour of a month, into Zarr, agreeing with the logged test metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml4l.config import SplitConfig
from ml4l.usecases.lst.dataset import TARGET, build_ml_ready, read_normalisation, read_split, with_deltas
from ml4l.errors import InputError
from ml4l.usecases.lst.evaluation import error_metrics
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.usecases.lst.predict import predict_month, read_predictions
from ml4l.usecases.lst.train import CHAMPION, TrainConfig, train_and_log


def test_champion_predictions_reproduce_the_test_metrics(joined_lake: Lake) -> None:
    import mlflow

    build_ml_ready(joined_lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02")))
    trained = train_and_log(joined_lake, config=TrainConfig(epochs=2, batch_size=256), model_name="tiny-predict")
    report = predict_month(joined_lake, "2019-02", f"models:/tiny-predict@{CHAMPION}", "tiny-predict")
    assert report.run_id == trained.run_id and report.path == joined_lake.prediction("tiny-predict", "2019-02")

    predictions = read_predictions(joined_lake, "tiny-predict", "2019-02")
    assert predictions["lst"].shape == (report.hours, predictions.sizes["cell"])
    assert (predictions["time"].dt.strftime("%Y-%m") == "2019-02").all()
    lst = predictions["lst"].values
    features = read_normalisation(joined_lake)["features"]
    land_cells = np.isfinite(lst).all(axis=0)
    assert land_cells.sum() == report.land_cells and np.isnan(lst[:, ~land_cells]).all()

    # the test split's rows are ERA features at (hour, cell) too: the Zarr holds the same predictions
    test = read_split(joined_lake, "test")
    hour = pd.Index(predictions["time"].values).get_indexer(test["time"])
    assert (hour >= 0).all()
    at_rows = lst[hour, test["cell"].to_numpy()]
    on_land = np.isfinite(at_rows)
    assert on_land.mean() > 0.95  # test rows on cells without land (lsm 0, beside a coast) are not predicted
    champion = mlflow.pyfunc.load_model(f"models:/tiny-predict@{CHAMPION}")
    raw = with_deltas(read_joined(joined_lake, "2019-02"))  # the served model takes raw features
    assert raw["time"].equals(test["time"]) and raw["cell"].equals(test["cell"])
    expected = np.asarray(champion.predict(raw[features])).ravel()
    np.testing.assert_allclose(at_rows[on_land], expected[on_land], rtol=1e-5)
    # float32 predictions near 300 K, summed in another order by the served model: a few float32 ulps apart
    ulps = 4 * float(np.spacing(np.float32(test[TARGET].abs().max())))
    assert error_metrics(test[TARGET].to_numpy(), expected)["mae"] == pytest.approx(trained.metrics["test_mae"], abs=ulps)


def test_a_month_outside_the_store_is_refused_and_nothing_is_written(joined_lake: Lake) -> None:
    build_ml_ready(joined_lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02")))
    train_and_log(joined_lake, config=TrainConfig(epochs=1, batch_size=256), model_name="tiny-refuse")
    with pytest.raises(InputError, match="no hour of 2030-01"):
        predict_month(joined_lake, "2030-01", f"models:/tiny-refuse@{CHAMPION}", "tiny-refuse")
    assert not joined_lake.fs.exists(joined_lake.prediction("tiny-refuse", "2030-01"))
