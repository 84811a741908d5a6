"""Training: MLflow run with the named metrics and plots, registry alias, a reloaded champion that reproduces them, streaming."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from corpus import write_random_ml_ready

from ml4l.config import SplitConfig
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.usecases.lst.dataset import TARGET, build_ml_ready, read_normalisation, read_split, shard_count, with_deltas
from ml4l.usecases.lst.evaluation import error_metrics
from ml4l.usecases.lst.train import CHAMPION, TrainConfig, least_squares, stream_split, train_and_log

NAMED = ["test_mae", "test_rmse", "test_bias", "baseline_skt_test_mae", "baseline_skt_test_rmse",
         "baseline_linear_test_mae", "baseline_linear_test_rmse"]
PLOTS = {"plots/learning_curve.png", "plots/error_map.png", "plots/predicted_vs_observed.png", "plots/permutation_importance.png"}


@pytest.fixture
def ml_lake(joined_lake: Lake) -> Lake:
    build_ml_ready(joined_lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02")))
    return joined_lake


def test_least_squares_by_batches_equals_scikit_learn() -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 7)).astype(np.float32)
    y = x @ rng.normal(size=7) + 3.0 + rng.normal(size=5000)
    fit = least_squares((x[i : i + 700], y[i : i + 700]) for i in range(0, 5000, 700))
    # the reference in float64 (on float32 input scikit-learn solves in float32); both solve the
    # same problem, so they differ by rounding: the normal equations square the condition number
    augmented = np.column_stack([x.astype(np.float64), np.ones(len(x))])
    bound = 10 * np.linalg.cond(augmented) ** 2 * np.finfo(np.float64).eps * augmented.shape[1]
    reference = LinearRegression().fit(x.astype(np.float64), y)
    solution = np.append(fit.coef, fit.intercept)
    expected = np.append(reference.coef_, reference.intercept_)
    assert np.linalg.norm(solution - expected) <= bound * np.linalg.norm(expected)


def test_run_is_logged_registered_and_reproducible(ml_lake: Lake) -> None:
    import mlflow

    first = train_and_log(ml_lake, config=TrainConfig(epochs=3, batch_size=256), model_name="tiny")
    assert set(NAMED) <= set(first.metrics) and first.champion and first.version == "1"
    client = mlflow.MlflowClient()
    run = client.get_run(first.run_id)
    assert set(NAMED) <= set(run.data.metrics)
    assert [m.step for m in client.get_metric_history(first.run_id, "val_loss")] == [0, 1, 2]
    assert {a.path for a in client.list_artifacts(first.run_id, "dataset")} == {
        "dataset/normalisation.json", "dataset/features.json", "dataset/permutation_importance.csv"}
    assert {a.path for a in client.list_artifacts(first.run_id, "plots")} == PLOTS
    # the anchor starts the network at least squares, so a short run already beats skt
    assert first.metrics["test_mae"] < first.metrics["baseline_skt_test_mae"]

    champion = mlflow.pyfunc.load_model(f"models:/tiny@{CHAMPION}")
    assert champion.metadata.signature is not None
    test = read_split(ml_lake, "test")
    features = read_normalisation(ml_lake)["features"]
    raw = with_deltas(read_joined(ml_lake, "2019-02"))  # the served model takes raw features and normalises them itself
    assert raw["time"].equals(test["time"]) and raw["cell"].equals(test["cell"])
    predicted = np.asarray(champion.predict(raw[features[::-1]])).ravel()  # columns by name, in any order
    reproduced = error_metrics(test[TARGET].to_numpy(), predicted)
    # float32 predictions near 300 K, summed in another order by the served model: a few float32 ulps apart
    ulps = 4 * float(np.spacing(np.float32(test[TARGET].abs().max())))
    assert reproduced["mae"] == pytest.approx(first.metrics["test_mae"], abs=ulps)
    assert reproduced["rmse"] == pytest.approx(first.metrics["test_rmse"], abs=ulps)

    worse = train_and_log(ml_lake, config=TrainConfig(epochs=1, batch_size=256, learning_rate=0.5, linear_anchor=False, seed=1),
                          model_name="tiny")
    assert worse.metrics["test_mae"] > first.metrics["test_mae"]
    assert not worse.champion
    assert str(client.get_model_version_by_alias("tiny", CHAMPION).version) == first.version


def test_training_minimises_the_configured_loss(ml_lake: Lake) -> None:
    """With ``loss="huber"`` the validation loss logged is the Huber loss (1 K) of the model kept, not its MSE."""
    import mlflow

    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="hinge")
    result = train_and_log(ml_lake, config=TrainConfig(epochs=2, batch_size=256, loss="huber"), model_name="tiny-huber")
    client = mlflow.MlflowClient()
    assert client.get_run(result.run_id).data.params["loss"] == "huber"
    best = min(m.value for m in client.get_metric_history(result.run_id, "val_loss"))  # early stopping kept that epoch's weights

    validation = read_split(ml_lake, "validation")
    raw = with_deltas(read_joined(ml_lake, "2018-12"))
    assert raw["time"].equals(validation["time"]) and raw["cell"].equals(validation["cell"])
    features = read_normalisation(ml_lake)["features"]
    predicted = np.asarray(mlflow.pyfunc.load_model(result.model_uri).predict(raw[features]), dtype=np.float64).ravel()
    error = predicted - validation[TARGET].to_numpy(np.float64)
    huber = np.where(np.abs(error) <= 1.0, 0.5 * error**2, np.abs(error) - 0.5)
    # the served model's float32 predictions are a few ulps (at ~300 K) from the trained one's, and Keras
    # sums the loss in float32: both far below the gap to the MSE (twice the Huber loss for errors under 1 K)
    ulps = 4 * float(np.spacing(np.float32(validation[TARGET].abs().max())))
    assert huber.mean() == pytest.approx(best, rel=len(error) * float(np.finfo(np.float32).eps), abs=ulps)
    assert np.mean(error**2) > 1.5 * best


def test_streaming_reads_every_row_of_every_shard(ml_lake: Lake) -> None:
    features = read_normalisation(ml_lake)["features"]
    train = read_split(ml_lake, "train")
    stored = np.sort(train[TARGET].to_numpy(np.float32))
    dataset = stream_split(ml_lake, "train", "default", features, batch_size=1000, shuffle_rows=5000, seed=3)
    passes = [list(dataset.as_numpy_iterator()) for _ in range(2)]
    for streamed in passes:  # each pass: every row once, in the greedy path's batches (full but the last)
        targets = np.concatenate([y for _, y in streamed])
        np.testing.assert_array_equal(np.sort(targets), stored)
        assert [len(y) for _, y in streamed] == [1000] * (len(train) // 1000) + ([len(train) % 1000] if len(train) % 1000 else [])
        assert not np.array_equal(targets, train[TARGET].to_numpy(np.float32))  # shuffled
    assert not np.array_equal(*(np.concatenate([y for _, y in streamed]) for streamed in passes))  # a new order each pass


def test_streaming_training_logs_the_same_metrics(ml_lake: Lake) -> None:
    config = TrainConfig(epochs=2, batch_size=256, streaming=True, shuffle_rows=2000)
    result = train_and_log(ml_lake, config=config, model_name="tiny-stream")
    assert set(NAMED) <= set(result.metrics) and result.metrics["epochs_trained"] == 2


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from ml4l.lake import Lake
    from ml4l.usecases.lst.train import TrainConfig, build_model, stream_split
    from ml4l.usecases.lst.dataset import read_split, read_normalisation
    lake, mode, name = Lake(sys.argv[1]), sys.argv[2], sys.argv[3]
    features = read_normalisation(lake, name)["features"]
    model = build_model(len(features), TrainConfig(layers=2, width=16, linear_anchor=False))
    model.compile(optimizer="adam", loss="mse")
    model.predict(np.zeros((8, len(features)), np.float32), verbose=0)
    def peak_kb():  # this process image's own peak; ru_maxrss would carry the forking parent's over exec
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    before = peak_kb()
    if mode == "streaming":
        model.fit(stream_split(lake, "train", name, features, 4096, shuffle_rows=20_000), epochs=1, verbose=0)
    else:
        train = read_split(lake, "train", name)
        model.fit(train[features].to_numpy(np.float32), train["lst"].to_numpy(np.float32), batch_size=4096, epochs=1, verbose=0)
    print(json.dumps({"rss_growth_mb": (peak_kb() - before) / 1024}))
    """
)


def test_streaming_memory_does_not_grow_with_the_data(tmp_path: Path) -> None:
    """Streaming 24 shards (~400 MB of float32 features) costs no more memory than streaming 8; loading them whole does."""
    lake = Lake(str(tmp_path / "lake"))
    size_mb = write_random_ml_ready(lake, "big", shards=24, features=64) / 2**20
    small_mb = write_random_ml_ready(lake, "small", shards=8, features=64) / 2**20
    assert shard_count(lake, "train", "big") == 24 and shard_count(lake, "train", "small") == 8

    def growth(name: str, mode: str) -> float:
        done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, lake.root, mode, name], capture_output=True, text=True, check=True)
        return float(json.loads(done.stdout.strip().splitlines()[-1])["rss_growth_mb"])

    big, small = growth("big", "streaming"), growth("small", "streaming")
    extra_mb = size_mb - small_mb  # what holding the difference would cost
    # the stream holds a block and a few chunks whatever the set's size: 3x more data, (almost) no more memory
    assert big - small < 0.25 * extra_mb, f"streaming grew by {big:.0f} MB on {size_mb:.0f} MB and {small:.0f} MB on {small_mb:.0f} MB"
    assert growth("big", "greedy") > 0.9 * size_mb  # the probe can tell: holding the set whole costs its size


def test_block_shuffle_is_seeded_and_keeps_rows_whole(tmp_path: Path) -> None:
    from ml4l.usecases.lst.dataset import SHARD_ROWS
    from ml4l.usecases.lst.train import prefetched, shuffled_batches

    lake = Lake(str(tmp_path / "lake"))
    write_random_ml_ready(lake, "blocks", shards=3, features=4)
    features = [f"f{i}" for i in range(4)]
    table = read_split(lake, "train", "blocks")

    def one_pass(seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        batches = list(prefetched(shuffled_batches(lake, "train", "blocks", features, 1000, SHARD_ROWS, np.random.default_rng(seed))))
        return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]), [len(y) for _, y in batches]

    x, y, sizes = one_pass(5)
    assert sizes[:-1] == [1000] * (len(sizes) - 1) and sum(sizes) == len(table) == 3 * SHARD_ROWS
    streamed, stored = np.column_stack([x, y]), table[[*features, TARGET]].to_numpy(np.float32)
    # the same rows, each whole (features with their own target), in another order
    np.testing.assert_array_equal(streamed[np.lexsort(streamed.T)], stored[np.lexsort(stored.T)])
    assert not np.array_equal(y, table[TARGET].to_numpy(np.float32))
    again, other = one_pass(5), one_pass(6)
    np.testing.assert_array_equal(again[1], y)
    assert not np.array_equal(other[1], y)


def test_prefetch_raises_the_producers_error() -> None:
    from ml4l.usecases.lst.train import prefetched

    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetched(failing()))
