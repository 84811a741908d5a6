"""The oracle of a synthetic lake: the noise-free truth over exactly the pixels each joined row averaged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ml4l.config import Recipe
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.synthetic import SENSOR_NOISE_K, SyntheticEarth
from ml4l.usecases.lst.oracle import ORACLE, oracle_rows


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


def test_the_truth_is_the_documented_function_of_era_fields_at_the_pixel() -> None:
    # the oracle is only a ceiling a model can approach if nothing but the sensor noise lies outside ERA's fields
    earth = SyntheticEarth(20190101)
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-69.0, 69.0, 4000), rng.uniform(0.0, 360.0, 4000)
    t = 431_000.0 + rng.uniform(0.0, 24.0, lat.size)
    v15, v20 = earth.constants(lat, lon, 15), earth.constants(lat, lon, 20)
    era = earth.weather(lat, lon, t, v15)
    heating = era["skt"] - era["t2m"]
    clake = earth.lake_cover(v20["cl"], lat, 3)
    clear_sky_height = -v15["sdor"] * (0.4 + 0.8 * (1 - v15["isor"])) * (0.5 + 0.5 * np.tanh((10 - (era["t2m"] - era["d2m"])) / 4))
    lapse_rate = 0.006 * (1 - 2 * era["sd"] / (era["sd"] + 0.03))
    surface = (
        era["skt"]
        + 2.1
        + 0.6 * heating * (1 - 0.6 * v20["cvh"])
        + 3.0 * np.tanh((era["t2m"] - era["d2m"] - 6) / 5)
        + 4.0 * (1 - v20["cvh"] - v20["cvl"]).clip(0) * (1 - era["fal"] / 0.35).clip(0)
        - 4.0 * clake * heating.clip(0) / 6
        - 2.0 * v20["si10"]
        - lapse_rate * clear_sky_height
    )
    documented = np.where(v20["si10"] > 0.5, np.minimum(surface, 273.15), surface)
    truth = earth.lst(lat, lon, t, 3, None)
    assert (np.abs(clear_sky_height) > 100).any() and (v20["si10"] > 0.5).any()  # the relief and the cap are exercised
    # the same float64 operations up to their order: a few ulps of ~300 K
    np.testing.assert_allclose(truth, documented, rtol=0, atol=1e-9)
