"""ML-ready sets: splits by time, held-out blocks, deltas, train-only normalisation, the ml_ready suite."""

from __future__ import annotations

import numpy as np
import pytest

from ml4l import quality
from ml4l.usecases.lst.dataset import (
    DELTA_COLUMNS,
    SplitConfig,
    build_ml_ready,
    heldout_blocks,
    ml_ready_table,
    read_normalisation,
    read_split,
)
from ml4l.join import read_joined
from ml4l.lake import Lake


def three_month_split(**kwargs: object) -> SplitConfig:
    return SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02"), **kwargs)  # type: ignore[arg-type]


def test_overlapping_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        SplitConfig(train=("2019-01", "2019-06"), validation=("2019-06", "2019-07"), test=("2019-08", "2019-09"))


def test_a_split_without_months_is_refused(joined_lake: Lake) -> None:
    with pytest.raises(ValueError, match="no joined month in the validation range"):
        build_ml_ready(joined_lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2017-01", "2017-12"), test=("2019-02", "2019-02")))


def test_train_only_normalisation_and_deltas(joined_lake: Lake) -> None:
    # validation borrows January's cells from a copy of the month under another name
    ready = build_ml_ready(joined_lake, three_month_split())
    train, test = read_split(joined_lake, "train"), read_split(joined_lake, "test")
    recorded = read_normalisation(joined_lake)
    assert recorded["features"] == ready.features and set(DELTA_COLUMNS) & set(ready.features)
    january = read_joined(joined_lake, "2019-01")
    for name in ("t2m", "cvh_delta"):
        raw = january[name] if name in january else january["cvh_v20"] - january["cvh_v15"]
        np.testing.assert_allclose(train[name] * recorded["std"][name] + recorded["mean"][name], raw, rtol=1e-5, atol=1e-5)
        assert abs(float(train[name].mean())) < 1e-3 and abs(float(train[name].std(ddof=0)) - 1) < 1e-3
    assert "slt_delta" in ready.dropped_constant, "soil type is the same in V15 and V20: zero variance"
    assert test["time"].min() > train["time"].max()
    np.testing.assert_array_equal(test["skt_raw"], read_joined(joined_lake, "2019-02")["skt"])
    outcome = quality.validate(joined_lake, "ml_ready", "default", ml_ready_table(joined_lake))
    assert outcome.success, outcome.summary()


def test_held_out_blocks_keep_test_cells_unseen(joined_lake: Lake) -> None:
    build_ml_ready(joined_lake, three_month_split(heldout_block_fraction=0.3, seed=1))
    train, test = read_split(joined_lake, "train"), read_split(joined_lake, "test")
    assert len(test) > 0 and set(train["cell"]).isdisjoint(test["cell"])
    assert heldout_blocks(test["latitude"].to_numpy(), test["longitude"].to_numpy(), 0.3, 1).all()


def test_quarantined_month_is_refused(joined_lake: Lake) -> None:
    quality.quarantine(joined_lake, "joined_month", "2019-02", "joined_month 2019-02: 1 of 63 expectations failed: target_in_range")
    with pytest.raises(quality.QuarantinedError, match="target_in_range"):
        build_ml_ready(joined_lake, three_month_split())


def test_ml_ready_suite_catches_a_bad_set(joined_lake: Lake) -> None:
    build_ml_ready(joined_lake, three_month_split())
    table = ml_ready_table(joined_lake)
    table.loc[table["split"] == "train", "overlapping_splits"] = 1
    table.loc[table.index[0], "nan_count"] = 3
    outcome = quality.validate(joined_lake, "ml_ready", "default", table)
    assert {f.name for f in outcome.failed} == {"splits_disjoint_in_time", "no_missing_values"}
