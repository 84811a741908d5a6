"""The oracle of a synthetic lake: the noise-free truth over exactly the pixels each joined row averaged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ml4l.config import Recipe
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.usecases.lst.oracle import ORACLE, oracle_rows
from ml4l.synthetic import SENSOR_NOISE_K


def test_observed_rows_differ_from_the_oracle_by_the_sensor_noise_alone(joined_lake: Lake, tiny_recipe: Recipe) -> None:
    months = ["2019-01", "2019-02"]
    oracle = oracle_rows(joined_lake, months, tiny_recipe.join)
    assert oracle is not None
    for month in months:
        joined = read_joined(joined_lake, month)
        rows = oracle[oracle["time"].dt.strftime("%Y-%m") == month].reset_index(drop=True)
        assert rows["time"].equals(joined["time"]) and rows["cell"].astype(np.int64).equals(joined["cell"].astype(np.int64))
        # the same n pixels with independent N(0, 0.9 K) noise: lst - oracle ~ N(0, 0.9 / sqrt(n)); another pixel set
        # would add differences of the truth itself, kelvins. The 0.02 K encoding adds a uniform error of 0.006 K.
        n = joined["lst_count"].to_numpy(np.float64)
        sigma = np.sqrt(SENSOR_NOISE_K**2 / n + 0.02**2 / 12)
        z = (joined["lst"].to_numpy(np.float64) - rows[ORACLE].to_numpy()) / sigma
        size = z.size
        assert size > 100
        assert abs(z.mean()) < 5 / np.sqrt(size)
        assert abs(z.var() - 1) < 5 * np.sqrt(2 / size)


def test_a_real_lake_has_no_oracle(joined_lake: Lake, tiny_recipe: Recipe) -> None:
    joined_lake.fs.rm(joined_lake.sample_record)
    assert oracle_rows(joined_lake, ["2019-01"], tiny_recipe.join) is None


def test_other_join_settings_than_the_lakes_are_refused(joined_lake: Lake, tiny_recipe: Recipe) -> None:
    with pytest.raises(ValueError, match="does not average the joined month's pixels"):
        oracle_rows(joined_lake, ["2019-01"], replace(tiny_recipe.join, threshold_km=60.0))
