"""The LST registry: the oracle metrics, a served model that needs no ml4l code, promotion on the same test split only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ml4l.config import Recipe, SplitConfig
from ml4l.usecases.lst.dataset import TARGET, build_ml_ready, read_normalisation, read_split, with_deltas
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.ml.metrics import gap_closed
from ml4l.usecases.lst.train import CHAMPION, TEST_SPLIT_TAG, TrainConfig, train_and_log

SPLIT = SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02"))

_SERVE_WITHOUT_ML4L = textwrap.dedent(
    """
    import sys
    sys.modules["ml4l"] = None  # any import of ml4l, direct or by unpickling, fails
    import mlflow, numpy as np, pandas as pd
    tracking, model_uri, frame, out = sys.argv[1:]
    mlflow.set_tracking_uri(tracking)
    predicted = mlflow.pyfunc.load_model(model_uri).predict(pd.read_parquet(frame))
    np.save(out, np.asarray(predicted, dtype=np.float64).ravel())
    assert not [m for m in sys.modules if m.startswith("ml4l.")]
    """
)


def test_served_model_takes_raw_features_and_needs_no_ml4l(joined_lake: Lake, tiny_recipe: Recipe, tmp_path: Path) -> None:
    build_ml_ready(joined_lake, SPLIT)
    trained = train_and_log(joined_lake, config=TrainConfig(epochs=2, batch_size=256), model_name="served", join=tiny_recipe.join)
    m = trained.metrics
    # the oracle is the synthetic truth without noise: far closer to MODIS than any baseline
    assert m["oracle_test_mae"] < min(m["baseline_skt_test_mae"], m["baseline_linear_test_mae"])
    best = {name: m[f"baseline_{name}_test_mae"] for name in ("skt", "linear")}
    assert m["gap_closed"] == pytest.approx(gap_closed(m["test_mae"], best, m["oracle_test_mae"]), rel=1e-12)

    test = read_split(joined_lake, "test")
    features = read_normalisation(joined_lake)["features"]
    raw = with_deltas(read_joined(joined_lake, "2019-02"))
    assert raw["time"].equals(test["time"]) and raw["cell"].equals(test["cell"])
    raw[features[::-1]].to_parquet(tmp_path / "raw.parquet")  # columns are matched by name
    script = tmp_path / "serve.py"
    script.write_text(_SERVE_WITHOUT_ML4L)
    subprocess.run([sys.executable, str(script), trained.tracking_uri, f"models:/served@{CHAMPION}", str(tmp_path / "raw.parquet"),
                    str(tmp_path / "predicted.npy")], check=True, cwd=tmp_path, timeout=300)
    predicted = np.load(tmp_path / "predicted.npy")
    mae = float(np.abs(predicted - test[TARGET].to_numpy(np.float64)).mean())
    # the model normalises in float64 as the dataset did; its float32 predictions near 300 K may differ by a few ulps
    assert mae == pytest.approx(m["test_mae"], abs=4 * float(np.spacing(np.float32(test[TARGET].abs().max()))))


def test_champion_is_promoted_only_over_a_model_measured_on_the_same_test_rows(joined_lake: Lake) -> None:
    import mlflow

    build_ml_ready(joined_lake, SPLIT)
    config = TrainConfig(epochs=1, batch_size=256)
    first = train_and_log(joined_lake, config=config, model_name="split")
    assert first.champion
    client = mlflow.MlflowClient()
    split = client.get_run(first.run_id).data.tags[TEST_SPLIT_TAG]
    client.log_metric(first.run_id, "test_mae", 1e9)  # any newcomer now beats the champion's score

    client.set_tag(first.run_id, TEST_SPLIT_TAG, "0" * 64)  # as if measured on other test rows: not comparable
    second = train_and_log(joined_lake, config=config, model_name="split")
    assert client.get_run(second.run_id).data.tags[TEST_SPLIT_TAG] == split
    assert not second.champion
    assert str(client.get_model_version_by_alias("split", CHAMPION).version) == first.version

    client.set_tag(first.run_id, TEST_SPLIT_TAG, split)  # the same test rows: the better model wins
    third = train_and_log(joined_lake, config=config, model_name="split")
    assert third.champion
    assert str(client.get_model_version_by_alias("split", CHAMPION).version) == third.version
