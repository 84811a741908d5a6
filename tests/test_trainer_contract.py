"""The trainer contract: only the validation set picks the checkpoint; shuffling the test labels changes nothing chosen."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml4l.config import SplitConfig
from ml4l.usecases.lst.dataset import TARGET, build_ml_ready
from ml4l.lake import Lake
from ml4l.ml.trainer import FitConfig, fit, mlp
from ml4l.usecases.lst.train import TrainConfig, train_and_log


def _shuffle_test_labels(lake: Lake, seed: int) -> None:
    path = lake.path("ml", "default", "test.parquet")
    table = pq.read_table(path)
    shuffled = np.random.default_rng(seed).permutation(table.column(TARGET).to_numpy())
    table = table.set_column(table.schema.get_field_index(TARGET), TARGET, pa.array(shuffled, type=pa.float32()))
    pq.write_table(table, path, row_group_size=table.num_rows)


def test_shared_fit_chooses_the_same_checkpoint_whatever_the_test_labels() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(900, 4)).astype(np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=900)).astype(np.float32)
    train, validation, test = (x[:600], y[:600]), (x[600:750], y[600:750]), (x[750:], y[750:])
    config = FitConfig(epochs=12, batch_size=64, learning_rate=1e-2, patience=3, seed=5)

    first = fit(lambda: mlp(4, (16, 16)), train, validation, config)
    first_error = float(np.abs(first.model.predict(test[0], verbose=0)[:, 0] - test[1]).mean())
    shuffled = (test[0], rng.permutation(test[1]))  # fit has no test argument: the labels can only be read afterwards
    second = fit(lambda: mlp(4, (16, 16)), train, validation, config)
    second_error = float(np.abs(second.model.predict(shuffled[0], verbose=0)[:, 0] - shuffled[1]).mean())

    assert second.best_epoch == first.best_epoch and second.history == first.history
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert second_error != first_error


def test_lst_trainer_chooses_the_same_checkpoint_whatever_the_test_labels(joined_lake: Lake) -> None:
    import mlflow

    build_ml_ready(joined_lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02")))
    config = TrainConfig(epochs=6, batch_size=256, patience=2)
    first = train_and_log(joined_lake, config=config, model_name="contract")
    _shuffle_test_labels(joined_lake, seed=1)
    second = train_and_log(joined_lake, config=config, model_name="contract")

    assert second.metrics["epochs_trained"] == first.metrics["epochs_trained"]
    history = [[m.value for m in mlflow.MlflowClient().get_metric_history(run, "val_loss")] for run in (first.run_id, second.run_id)]
    assert history[0] == history[1]
    weights = [mlflow.tensorflow.load_model(result.model_uri).get_weights() for result in (first, second)]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert second.metrics["test_mae"] != first.metrics["test_mae"]  # the test labels did change, and were read once, at the end
