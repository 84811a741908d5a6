"""Downscaling (seed 002): sample forms, input quarantine, vectorised patches, leak-free splits, scaling, baselines, flows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from benchmarks.bench_patches import seed_loop_patches
from ml4l.config import RecipeError
from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.ml import splits
from ml4l.usecases.downscale import dataset, inputs, model, patches, sample
from ml4l.usecases.downscale.layout import DownscaleLake
from ml4l.usecases.downscale.recipe import WINDOW_RADIUS, DownscaleRecipe, load_recipe

TINY = {
    "kind": "downscale",
    "name": "tiny",
    "sample": {"rows": 64, "cols": 64, "row_offset": 250, "col_offset": 195, "day_step": 30, "skipped_days": [60]},
    "split": {"block": 14},
    "model": {"hidden": [32, 16], "epochs": 10, "patience": 4, "batch_size": 128},
}


@pytest.fixture(scope="module")
def tiny_recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("downscale-recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def tiny(tiny_recipe_file: Path) -> DownscaleRecipe:
    return load_recipe(tiny_recipe_file)


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory, tiny: DownscaleRecipe) -> Lake:
    """The tiny recipe's sample inputs; read-only for tests."""
    lake = Lake.at(str(tmp_path_factory.mktemp("downscale-lake")))
    sample.generate(lake, tiny.sample)
    return lake


@pytest.fixture(scope="module")
def built(sample_lake: Lake, tiny: DownscaleRecipe) -> dict:
    return dataset.build_dataset(sample_lake, tiny)


@pytest.fixture
def raw_copy(tmp_path: Path, sample_lake: Lake) -> Lake:
    shutil.copytree(sample_lake.path("raw"), tmp_path / "raw")
    return Lake.at(str(tmp_path))


# ---- recipe ----


def test_recipe_takes_the_seeds_scaling_config_and_names_file_and_field_when_bad(tmp_path: Path) -> None:
    good = tmp_path / "seed.yaml"
    good.write_text("kind: downscale\nfeature_scaling:\n  day_cos: raw\n  long: standardize\n  height_diffs: raw\n")
    recipe = load_recipe(good)
    assert (
        recipe.kind,
        recipe.feature_scaling.long,
        recipe.feature_scaling.height_diffs,
        recipe.feature_scaling.lat,
    ) == ("downscale", "standardize", "raw", "normalize")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: downscale\nfeature_scaling:\n  lat: minmax\nsplit:\n  buffer: 4\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(bad)
    message = str(caught.value)
    assert str(bad) in message and "feature_scaling.lat" in message and "split.buffer" in message
    other = tmp_path / "other.yaml"
    other.write_text("kind: gapfill\n")
    with pytest.raises(RecipeError, match="field kind"):
        load_recipe(other)


# ---- sample inputs in the seed's forms ----


def test_sample_files_have_the_seeds_forms(sample_lake: Lake, tiny: DownscaleRecipe) -> None:
    paths = DownscaleLake(sample_lake)
    raw = xr.open_dataset(paths.lst(2020), engine="h5netcdf", mask_and_scale=False, decode_times=False)
    variable = raw[sample.VARIABLE]
    assert list(raw.data_vars) == [sample.VARIABLE]
    assert variable.dims == ("time", "band", "y", "x") and variable.sizes["band"] == 4
    assert variable.attrs["units"] == "0.02 K" and np.isnan(variable.attrs["_FillValue"])
    days = raw.time.values
    assert 60 not in days and np.all(np.diff(days) > 0) and days.max() < 366
    values = variable.values
    lst, qa = values[:, :3], values[:, 3]
    finite = lst[np.isfinite(lst)]
    assert np.isnan(lst).any(), "masked (sea and dropped) pixels"
    assert finite.min() >= 7500 and finite.max() <= 65535 and np.array_equal(finite, np.rint(finite))
    assert set(np.unique(qa)) <= {0.0, 1.0, 2.0, 3.0} and {1.0, 2.0, 3.0} <= set(np.unique(qa))
    assert np.all(np.diff(raw.y.values) > 0), "y runs south to north as in the seed"

    import rasterio

    with rasterio.open(paths.dem()) as dem:
        assert dem.dtypes == ("int16",) and dem.crs.to_epsg() == 4326 and dem.transform.e < 0
        assert dem.shape == (tiny.sample.rows, tiny.sample.cols)
    opened = inputs.open_inputs(paths.lst(2020), paths.dem())
    assert opened.grid_offset_deg <= inputs.GRID_TOLERANCE_DEG
    opened.close()


def test_truth_is_learnable_and_the_noise_is_as_documented(sample_lake: Lake, tiny: DownscaleRecipe) -> None:
    paths = DownscaleLake(sample_lake)
    truth = inputs.open_truth(paths.truth(2020)).values
    observed = inputs.open_inputs(paths.lst(2020), paths.dem())
    residuals = []
    for i in range(observed.days.size):
        lst, qa = observed.day(i)
        clear = patches.valid_pixels(lst[1], qa, "day")
        residuals.append((lst[1] - truth[i, 1])[clear])
    observed.close()
    residual = np.concatenate(residuals)
    # noise N(0, sigma) plus rounding to 0.02 K (variance 0.02**2 / 12); sampling error of a std ~ sigma / sqrt(2 n)
    expected = np.sqrt(tiny.sample.noise_k**2 + LST_QUANTUM**2 / 12)
    assert abs(residual.std() - expected) < 5 * expected / np.sqrt(2 * residual.size)
    assert abs(residual.mean()) < 5 * expected / np.sqrt(residual.size)


LST_QUANTUM = sample.LST_SCALE_K


# ---- quarantine of bad inputs ----


def _rewrite_lst(lake: Lake, change) -> None:
    path = DownscaleLake(lake).lst(2020)
    with xr.open_dataset(path, engine="h5netcdf", decode_times=False) as source:
        array = source[sample.VARIABLE].load()
    change(array).to_netcdf(path, engine="h5netcdf")


def test_a_misaligned_dem_is_quarantined(raw_copy: Lake) -> None:
    # the seed's first DEM: 379 x 559 over the same box
    lst = inputs.open_lst(DownscaleLake(raw_copy).lst(2020))
    lat, lon = lst.y.values, lst.x.values
    sample.write_dem(
        DownscaleLake(raw_copy).dem(),
        np.zeros((379, 559), np.int16),
        np.linspace(lat[0], lat[-1], 379),
        np.linspace(lon[0], lon[-1], 559),
    )
    with pytest.raises(InputError, match=r"DEM has 379 x 559 pixels.*do not align") as caught:
        inputs.check_inputs(raw_copy, 2020)
    assert caught.value.source.endswith("srtm_israel.tif")
    record = json.loads(Path(raw_copy.path("quarantine", inputs.SUITE, "2020.json")).read_text())
    assert "379 x 559" in record["reason"]


def test_a_dem_shifted_by_a_hundredth_of_a_pixel_is_quarantined(raw_copy: Lake, tiny: DownscaleRecipe) -> None:
    lat, lon = sample.seed_axes(tiny.sample)
    dem = sample.terrain(tiny.sample.seed)[
        tiny.sample.row_offset : tiny.sample.row_offset + tiny.sample.rows,
        tiny.sample.col_offset : tiny.sample.col_offset + tiny.sample.cols,
    ]
    sample.write_dem(DownscaleLake(raw_copy).dem(), dem, lat, lon + (lon[1] - lon[0]) / 100)
    with pytest.raises(InputError, match=r"up to 8.32e-05 degrees"):
        inputs.check_inputs(raw_copy, 2020)


def test_a_file_in_kelvin_is_quarantined(raw_copy: Lake) -> None:
    _rewrite_lst(
        raw_copy, lambda a: a.copy(data=np.where(np.arange(4)[None, :, None, None] < 3, a.values * 0.02, a.values))
    )
    with pytest.raises(InputError, match=r"outside 7500\.\.65535: not in 0\.02 K units"):
        inputs.check_inputs(raw_copy, 2020)
    _rewrite_lst(raw_copy, lambda a: a.assign_attrs(units="K"))
    with pytest.raises(InputError, match="LST units are 'K'"):
        inputs.check_inputs(raw_copy, 2020)
    assert Path(raw_copy.path("quarantine", inputs.SUITE, "2020.json")).exists()


def test_a_missing_qa_band_is_quarantined(raw_copy: Lake) -> None:
    _rewrite_lst(raw_copy, lambda a: a.isel(band=slice(0, 3)))
    with pytest.raises(InputError, match="3 bands, expected 4.*the QA band is missing"):
        inputs.check_inputs(raw_copy, 2020)
    assert (
        "QA band is missing"
        in json.loads(Path(raw_copy.path("quarantine", inputs.SUITE, "2020.json")).read_text())["reason"]
    )


def test_unknown_qa_codes_fail_the_expectation_suite_and_good_inputs_pass(raw_copy: Lake) -> None:
    from ml4l.quality import QuarantinedError

    assert inputs.check_inputs(raw_copy, 2020)["expectations"] >= 10
    _rewrite_lst(raw_copy, lambda a: a.copy(data=np.where(np.arange(4)[None, :, None, None] == 3, 5.0, a.values)))
    with pytest.raises(QuarantinedError, match="qa_codes_known"):
        inputs.check_inputs(raw_copy, 2020)


# ---- patches ----


def test_vectorised_patches_equal_the_seeds_loop(sample_lake: Lake) -> None:
    paths = DownscaleLake(sample_lake)
    opened = inputs.open_inputs(paths.lst(2020), paths.dem())
    lst, qa = opened.day(3)
    for band in ("night", "day", "mean"):
        index = patches.BAND_INDEX[band]
        fast = patches.extract(
            lst[index], qa, patches.Heights.of(opened.dem), opened.lat, opened.lon, int(opened.days[3]), 366, band
        )
        slow = seed_loop_patches(lst[index], qa, opened.dem, opened.lat, opened.lon, int(opened.days[3]), 366, band)
        assert fast.target.size > 100 and np.array_equal(fast.rows, slow.rows) and np.array_equal(fast.cols, slow.cols)
        # both sum 81 float64 values in different orders (error ~ 81 * 1e-16 * 2700 m or 340 K, < 1e-10), then
        # round to float32: one float32 ulp apart at most, plus that float64 error for values near zero
        ulp = 2 * np.finfo(np.float32).eps
        np.testing.assert_allclose(fast.features, slow.features, rtol=ulp, atol=1e-10)
        np.testing.assert_allclose(fast.target, slow.target, rtol=ulp, atol=1e-10)
        # every window is fully observed for the band: the centre's QA and all 81 pixels
        valid = patches.valid_pixels(lst[index], qa, band)
        for r, c in zip(fast.rows[::37], fast.cols[::37], strict=True):
            assert valid[r - WINDOW_RADIUS : r + WINDOW_RADIUS + 1, c - WINDOW_RADIUS : c + WINDOW_RADIUS + 1].all()
        assert np.isin(qa[fast.rows, fast.cols], patches.VALID_QA[band]).all()
    opened.close()


# ---- data set: splits and scaling ----


def _window_pixels(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    covered = np.zeros(shape, dtype=bool)
    for dr in range(-WINDOW_RADIUS, WINDOW_RADIUS + 1):
        for dc in range(-WINDOW_RADIUS, WINDOW_RADIUS + 1):
            covered[rows + dr, cols + dc] = True
    return covered


@pytest.mark.parametrize("kind", ["block", "day_x_block"])
def test_no_test_window_shares_a_pixel_with_a_training_window(
    sample_lake: Lake, built: dict, tiny: DownscaleRecipe, kind: str
) -> None:
    sets, _, _ = dataset.load_split(sample_lake, tiny.name, kind)
    shape = (built["grid"]["rows"], built["grid"]["cols"])
    covered = {s: _window_pixels(v.row.astype(int), v.col.astype(int), shape) for s, v in sets.items()}
    assert all(v.target.size > 50 for v in sets.values())
    # over every day together: a pixel seen by a training window on any day is never in a test or validation window
    assert not (covered[splits.TRAIN] & covered[splits.TEST]).any()
    assert not (covered[splits.TRAIN] & covered[splits.VALIDATION]).any()
    assert not (covered[splits.VALIDATION] & covered[splits.TEST]).any()
    if kind == "day_x_block":
        assert set(np.unique(sets[splits.TRAIN].day)).isdisjoint(np.unique(sets[splits.TEST].day))
    # a 4-pixel buffer (the window radius) would not have been enough: the check that guards the build says so
    day = np.concatenate([v.day for v in sets.values()])
    rows, cols = (np.concatenate([getattr(v, a) for v in sets.values()]) for a in ("row", "col"))
    narrow = dataset.split_labels("block", day, rows, cols, tiny.split.model_copy(update={"buffer": WINDOW_RADIUS}))
    with pytest.raises(splits.LeakageError):
        splits.check_spatial_leakage(rows, cols, narrow, buffer=2 * WINDOW_RADIUS)


def test_day_split_keeps_days_whole_and_splits_are_reproducible(
    sample_lake: Lake, built: dict, tiny: DownscaleRecipe, tmp_path: Path
) -> None:
    sets, _, labels = dataset.load_split(sample_lake, tiny.name, "day")
    days = [set(np.unique(sets[s].day)) for s in (splits.TRAIN, splits.VALIDATION, splits.TEST)]
    assert all(days) and days[0].isdisjoint(days[1]) and days[0].isdisjoint(days[2]) and days[1].isdisjoint(days[2])
    assert not (labels == splits.EXCLUDED).any()
    again = Lake.at(str(tmp_path))
    shutil.copytree(sample_lake.path("raw"), tmp_path / "raw")
    rebuilt = dataset.build_dataset(again, tiny)
    assert {k: v["hash"] for k, v in rebuilt["splits"].items()} == {k: v["hash"] for k, v in built["splits"].items()}
    assert built["recipe"]["kind"] == "downscale"


def test_scaling_is_fitted_on_training_rows_only_with_one_scaler_for_the_height_differences(
    sample_lake: Lake, built: dict, tiny: DownscaleRecipe
) -> None:
    directory = DownscaleLake(sample_lake).dataset(tiny.name)
    labels = np.load(f"{directory}/splits/block/labels.npy")
    raw = np.concatenate([np.load(f"{directory}/{s['path']}")["features"] for s in built["shards"]]).astype(np.float64)
    train = raw[labels == splits.TRAIN]
    scaler = dataset.Scaler.from_dict(json.loads(Path(f"{directory}/splits/block/scaling.json").read_text()))
    names = patches.FEATURES
    diffs = train[:, patches.N_SCALAR :]
    # float64 accumulators over <= 1e6 values: agreement to ~1e-12 relative; float32 inputs are exact in float64
    assert scaler.offset[names.index("long")] == pytest.approx(train[:, names.index("long")].min(), rel=1e-12)
    assert scaler.scale[names.index("long")] == pytest.approx(np.ptp(train[:, names.index("long")]), rel=1e-12)
    assert scaler.offset[names.index("lst_avg")] == pytest.approx(train[:, names.index("lst_avg")].mean(), rel=1e-12)
    assert scaler.scale[names.index("lst_avg")] == pytest.approx(train[:, names.index("lst_avg")].std(), rel=1e-9)
    assert (scaler.offset[names.index("day_cos")], scaler.scale[names.index("day_cos")]) == (0.0, 1.0)
    assert np.all(scaler.offset[patches.N_SCALAR :] == diffs.min()) and np.all(
        scaler.scale[patches.N_SCALAR :] == pytest.approx(np.ptp(diffs), rel=1e-12)
    )
    # the test rows did not take part: their range is not the fitted one
    everything = raw[:, patches.N_SCALAR :]
    assert everything.min() < diffs.min() or everything.max() > diffs.max()


def test_lapse_rate_baseline_recovers_a_known_rate() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    dh = rng.normal(0, 80, n).astype(np.float32)
    band = rng.integers(0, 2, n).astype(np.int8)
    truth = np.where(band == 1, -6.5, 1.5)
    target = (truth * dh / 1000 + rng.normal(0, 0.5, n)).astype(np.float32)
    rows = dataset.SplitSet(
        np.zeros((n, 1), np.float32),
        target,
        target,
        dh,
        np.zeros(n, np.int16),
        np.zeros(n, np.int16),
        np.zeros(n, np.int16),
        band,
    )
    rates = model.fit_lapse_rates(rows)
    for b, rate in ((0, 1.5), (1, -6.5)):
        # least squares slope error: sigma / sqrt(sum dh^2) (dh in km)
        chosen = band == b
        standard_error = 0.5 / np.sqrt(np.sum((dh[chosen] / 1000.0) ** 2))
        assert abs(rates[b] - rate) < 5 * standard_error
    assert model.improvement_percent(2428.0, 3219.0) == pytest.approx(24.57, abs=0.01)  # the seed's best run


# ---- flows ----


@pytest.mark.slow
def test_dataset_and_train_flows_log_the_contract_metrics(
    prefect_server, tmp_path: Path, tiny_recipe_file: Path
) -> None:
    import mlflow

    from flows import registry
    from flows.downscale import downscale_dataset_flow, downscale_demo_flow, downscale_train_flow

    assert registry.load("downscale") is downscale_demo_flow
    built = downscale_dataset_flow(recipe=str(tiny_recipe_file), sample=True, lake_root=str(tmp_path))
    assert built["days"] == 12 and built["splits"]["day_x_block"]["test"] > 0
    # the tiny grid leaves day x block too few training rows (the demo checks the headline): whole days here
    result = downscale_train_flow(recipe=str(tiny_recipe_file), split="day", lake_root=str(tmp_path))
    m = result["metrics"]
    for name in (
        "test_mse",
        "test_rmse",
        "baseline_zero_test_mse",
        "baseline_lapse_rate_test_mse",
        "oracle_test_mse",
        "gap_closed",
        "mse_improvement_percent",
    ):
        assert np.isfinite(m[name]), name
    # the truth's signal beyond the lapse rate (~0.15 K^2) is ~20 standard errors of a test MSE on ~6,000 rows
    # (sqrt(2) sigma^2 / sqrt(n) ~ 0.005 K^2): a small model on a small set beats both baselines
    assert m["oracle_test_mse"] < m["test_mse"] < m["baseline_lapse_rate_test_mse"] < m["baseline_zero_test_mse"]
    mlflow.set_tracking_uri(result["tracking_uri"])
    run = mlflow.get_run(result["run_id"])
    assert run.data.params["recipe.kind"] == "downscale" and run.data.params["split"] == "day"
    assert run.data.metrics["gap_closed"] == pytest.approx(m["gap_closed"])
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=result["run_id"], artifact_path="plots")}
    assert artifacts == {"plots/test_day_map.png"}
