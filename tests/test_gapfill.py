"""Gap filling (seed 001): recipe, sample cube, split, statistics, baselines, flows, quarantine, cube from the lake."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from scipy.spatial import cKDTree

from ml4l.config import RecipeError
from ml4l.lake import Lake
from ml4l.ml.splits import EXCLUDED, TEST, TRAIN, VALIDATION, LeakageError, check_spatial_leakage, split_hash
from ml4l.ml.stats import standardise
from ml4l.usecases.gapfill import cube as cubes
from ml4l.usecases.gapfill import workflow
from ml4l.usecases.gapfill.dataset import FEATURES, Samples, fit_statistics, held_out_samples, split_cells
from ml4l.usecases.gapfill.model import MIN_PIXEL_ROWS, LinearT2m, MlpFiller, PerPixelLinear
from ml4l.usecases.gapfill.recipe import FillSpec, GapfillRecipe, load_recipe
from ml4l.usecases.gapfill.sample import generate_cube

SMALL = {
    "kind": "gapfill",
    "name": "small",
    "cube": {"name": "small", "north": 52.0, "west": -3.0, "rows": 24, "cols": 24},
    "split": {"block": 6, "buffer": 6},
    "model": {"epochs": 20, "batch_size": 512, "learning_rate": 0.01},
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, GapfillRecipe, Path]:
    """A 24 x 24 cell, two-year sample cube (read-only for tests) and its recipe file."""
    root = tmp_path_factory.mktemp("gapfill")
    path = root / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    recipe = load_recipe(path)
    lake = Lake.at(str(root / "lake"))
    generate_cube(lake, recipe)
    return lake, recipe, path


def private_copy(lake: Lake, tmp_path: Path) -> Lake:
    shutil.copytree(lake.root, tmp_path / "lake")
    return Lake.at(str(tmp_path / "lake"))


def listing(lake: Lake, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file of the lake and its bytes, except under the top-level folders ``skip``."""
    root = Path(lake.root)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


# ---- recipe ----


def test_recipe_errors_name_the_file_and_each_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"kind": "downscale", "split": {"block": 10, "buffer": 5}, "model": {"epochs": 0}}))
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    message = str(raised.value)
    assert message.startswith(f"recipe {path}: ")
    assert "field kind:" in message and "field model.epochs:" in message
    assert "buffer (5 cells) must be at least one block edge (10 cells)" in message
    assert load_recipe(None) == GapfillRecipe()


# ---- sample cube ----


def test_sample_cube_has_the_esdc_form_and_documented_gaps(small: tuple[Lake, GapfillRecipe, Path]) -> None:
    lake, recipe, _ = small
    ds = xr.open_zarr(cubes.cube_path(lake, "small"), consolidated=False)
    assert ds[cubes.LST].dims == ("time", "lat", "lon") and ds[cubes.LST].attrs["units"] == "K"
    assert ds[cubes.T2M].attrs["units"] == "°C"
    assert np.all(np.diff(ds["lat"].values) < 0) and np.allclose(np.diff(ds["lon"].values), 1 / 12)
    assert ds.sizes["time"] == 92 and np.all(np.diff(ds["time"].values[:46]) == np.timedelta64(8, "D"))
    assert GapfillRecipe.model_validate_json(ds.attrs["ml4l_recipe"]) == recipe
    cube = cubes.read_cube(lake, cubes.cube_path(lake, "small"))
    truth = cubes.read_truth(lake, "small")
    assert truth is not None and np.isfinite(truth[:, cube.land]).all() and np.isnan(truth[:, ~cube.land]).all()
    missing = (~cube.observed[:, cube.land]).mean(axis=1)
    assert 0.5 <= missing.mean() <= 0.7
    winter = cube.time.month.isin([12, 1, 2])
    summer = cube.time.month.isin([6, 7, 8])
    # the cloud probability is 0.1 cos(...) higher in winter: ~0.18 apart; spread of a season's mean ~0.03
    assert missing[winter].mean() - missing[summer].mean() > 0.08
    # the noise around the truth has the recipe's standard deviation: n ~ 10^4, so within ~3 / sqrt(2n) relative
    noise = (cube.lst - truth)[cube.observed]
    assert abs(noise.std() / recipe.cube.noise_k - 1) < 3 / np.sqrt(2 * noise.size) + 1e-3


def test_gaps_are_more_frequent_further_north(tmp_path: Path) -> None:
    recipe = GapfillRecipe(cube={"name": "tall", "north": 52.0, "west": -3.0, "rows": 120, "cols": 8})
    lake = Lake.at(str(tmp_path))
    generate_cube(lake, recipe)
    cube = cubes.read_cube(lake, cubes.cube_path(lake, "tall"))
    cloudy = ~cube.observed & cube.land[None]
    north, south = (
        cloudy[:, half].sum() / (cube.land[half].sum() * cube.shape[0]) for half in (slice(0, 60), slice(60, 120))
    )
    # the halves' centres are 5 degrees apart: +0.15 in cloud probability; spread of each share ~0.02
    assert north - south > 0.07


# ---- split and statistics ----


def test_split_is_byte_identical_for_a_seed_and_no_training_cell_is_within_the_buffer(
    small: tuple[Lake, GapfillRecipe, Path],
) -> None:
    lake, recipe, _ = small
    cube = cubes.read_cube(lake, cubes.cube_path(lake, "small"))
    spec = recipe.split
    labels = split_cells(cube, spec)
    again = split_cells(cube, spec)
    assert labels.tobytes() == again.tobytes() and split_hash(labels) == split_hash(again)
    assert split_hash(split_cells(cube, spec.model_copy(update={"seed": spec.seed + 1}))) != split_hash(labels)
    assert {TRAIN, VALIDATION, TEST} <= set(np.unique(labels).tolist())
    assert spec.buffer >= spec.block

    # independent of the shared checker: Chebyshev distance in (row, col, step scaled: time_buffer steps = buffer cells)
    points = np.argwhere(labels != EXCLUDED).astype(np.float64)
    kinds = labels[labels != EXCLUDED]
    scale = spec.buffer / max(spec.time_buffer, 1)
    points[:, 0] *= scale if spec.time_buffer else spec.buffer + 1
    near = cKDTree(points[kinds == TEST]).query(
        points[kinds == TRAIN], p=np.inf, distance_upper_bound=spec.buffer + 1e-9
    )[0]
    assert np.isinf(near).all(), "a training cell lies within the buffer of a test cell"

    # the checker fails on a split with one excluded cell next to a test cell turned into training
    steps, rows, cols = np.indices(cube.shape)
    test_cells = np.argwhere(labels == TEST)
    t, r, c = next((t, r, c) for t, r, c in test_cells if c + 1 < cube.shape[2] and labels[t, r, c + 1] == EXCLUDED)
    leaky = labels.copy()
    leaky[t, r, c + 1] = TRAIN
    with pytest.raises(LeakageError):
        check_spatial_leakage(
            rows.ravel(), cols.ravel(), leaky.ravel(), spec.buffer, steps=steps.ravel(), time_buffer=spec.time_buffer
        )


def test_statistics_are_fitted_on_training_rows_only(small: tuple[Lake, GapfillRecipe, Path]) -> None:
    lake, recipe, _ = small
    cube = cubes.read_cube(lake, cubes.cube_path(lake, "small"))
    labels = split_cells(cube, recipe.split)
    before = held_out_samples(cube, labels, recipe.features.radius, recipe.split.seed)
    held_out = (labels == TEST) | (labels == VALIDATION)
    changed = cubes.Cube(
        **{
            **cube.__dict__,
            "lst": np.where(held_out, cube.lst + 40, cube.lst).astype(np.float32),
            "t2m": np.where(held_out, cube.t2m - 25, cube.t2m).astype(np.float32),
        }
    )
    after = held_out_samples(changed, labels, recipe.features.radius, recipe.split.seed)
    assert not np.array_equal(before.test.x, after.test.x) and not np.array_equal(before.test.y, after.test.y)
    np.testing.assert_array_equal(before.train.x, after.train.x)
    assert statistics(before.train) == statistics(after.train)


def statistics(train: Samples) -> list[dict[str, dict[str, float]]]:
    features, residual = fit_statistics(train)
    return [features.to_dict(list(FEATURES)), residual.to_dict(["residual"])]


# ---- baselines ----


def test_per_pixel_linear_recovers_each_pixel_and_falls_back_where_too_few_rows() -> None:
    rng = np.random.default_rng(3)
    grid = (3, 4)
    intercept = rng.uniform(270, 290, grid)
    slope = rng.uniform(0.5, 1.5, grid)
    rows, cols, t2m = [], [], []
    for r in range(grid[0]):
        for c in range(grid[1]):
            n = MIN_PIXEL_ROWS - 1 if (r, c) == (0, 0) else 30
            rows += [r] * n
            cols += [c] * n
            t2m += list(rng.uniform(-10, 25, n))
    row, col, t = np.array(rows), np.array(cols), np.array(t2m, dtype=np.float32)
    y = (intercept[row, col] + slope[row, col] * t).astype(np.float32)
    x = np.zeros((t.size, len(FEATURES)), dtype=np.float32)
    x[:, 0] = t
    train = Samples(x, y, np.zeros_like(row), row, col)
    fallback = LinearT2m(280.0, 1.0)
    fitted = PerPixelLinear.fit(train, grid, fallback)
    own = np.ones(grid, dtype=bool)
    own[0, 0] = False
    # y is float32 (~2e-5 K rounding at 300 K) over a 35 K span of T2m: far below these tolerances
    np.testing.assert_allclose(fitted.slope[own], slope[own], rtol=1e-4)
    np.testing.assert_allclose(fitted.intercept[own], intercept[own], rtol=1e-5)
    assert (fitted.intercept[0, 0], fitted.slope[0, 0]) == (fallback.intercept, fallback.slope)
    line = LinearT2m.fit(train.take(row == 1))
    assert abs(line.slope - np.polyfit(t[row == 1], y[row == 1], 1)[0]) < 1e-3


# ---- flows ----


def test_train_and_fill_flows(prefect_server, small: tuple[Lake, GapfillRecipe, Path], tmp_path: Path) -> None:
    import mlflow

    from flows.gapfill import gapfill_fill_flow, gapfill_train_flow

    source, recipe, recipe_path = small
    lake = private_copy(source, tmp_path)
    trained = gapfill_train_flow(recipe=str(recipe_path), lake_root=lake.root)
    m = trained["metrics"]
    assert (
        m["test_rmse"] < m["baseline_linear_t2m_test_rmse"]
        and m["test_rmse"] < m["baseline_per_pixel_linear_test_rmse"]
    )
    assert m["gap_closed"] > 0.5 and m["artificial_gap_gap_closed"] > 0.5
    # the oracle's error is the noise: within ~3 sigma of noise_k for ~10^3 test rows
    assert abs(m["oracle_test_rmse"] - recipe.cube.noise_k) < 3 * recipe.cube.noise_k / np.sqrt(2 * m["test_rows"])

    mlflow.set_tracking_uri(trained["tracking_uri"])
    run = mlflow.get_run(trained["run_id"])
    assert mlflow.get_experiment(run.info.experiment_id).name == "ml4l-gapfill"
    for name in (
        "test_rmse",
        "test_mae",
        "baseline_linear_t2m_test_rmse",
        "baseline_per_pixel_linear_test_rmse",
        "oracle_test_rmse",
        "gap_closed",
        "artificial_gap_test_rmse",
    ):
        assert run.data.metrics[name] == pytest.approx(m[name])
    assert run.data.params["recipe.kind"] == "gapfill" and run.data.params["split_hash"] == trained["split_hash"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(trained["run_id"])}
    assert {"recipe.json", "map_observed_filled_truth.png"} <= artifacts

    filled = gapfill_fill_flow(recipe=str(recipe_path), lake_root=lake.root)
    cube = cubes.read_cube(lake, trained["cube"])
    ds = xr.open_zarr(filled["path"], consolidated=False)
    lst, origin = ds["lst"].values, ds["lst_source"].values
    assert ds["lst"].encoding["chunks"][0] == recipe.fill.time_chunk
    assert np.isfinite(lst[:, cube.land]).all() and np.isnan(lst[:, ~cube.land]).all()
    np.testing.assert_array_equal(origin == 0, cube.observed)
    np.testing.assert_array_equal(lst[cube.observed], cube.lst[cube.observed])
    assert (origin[:, ~cube.land] == -1).all() and filled["filled_cells"] == int((origin == 1).sum()) > 0
    assert GapfillRecipe.model_validate_json(ds.attrs["ml4l_recipe"]).kind == "gapfill"

    # the MLP's NumPy forward pass is the saved Keras network's: float32 sums of ~10^2 terms around 300 K, ~1e-4 K
    network = workflow.load_model(lake, "mlp")
    assert isinstance(network, MlpFiller)
    rows = held_out_samples(cube, np.zeros(cube.shape, dtype=np.int8), recipe.features.radius, 0).train
    keras_residual = network.network.predict(standardise(rows.x, network.features), verbose=0)[:, 0]
    keras_lst = rows.t2m + 273.15 + keras_residual * network.residual.std[0] + network.residual.mean[0]
    np.testing.assert_allclose(network.predict(rows.x, rows.row, rows.col), keras_lst, atol=2e-3, rtol=0)

    # a baseline fills as well: every gap is its pixel's line in T2m
    per_pixel = workflow.fill(
        lake, recipe.model_copy(update={"fill": FillSpec(model="per_pixel_linear")}), trained["cube"]
    )
    lines = workflow.load_model(lake, "per_pixel_linear")
    assert isinstance(lines, PerPixelLinear)
    gaps = xr.open_zarr(per_pixel.path, consolidated=False)
    step, row, col = np.nonzero(gaps["lst_source"].values == 1)
    expected = lines.intercept[row, col] + lines.slope[row, col] * cube.t2m[step, row, col]
    np.testing.assert_allclose(gaps["lst"].values[step, row, col], expected, rtol=1e-6)

    before = listing(lake, skip=("mlflow", "reports", ".locks"))
    again = workflow.fill(lake, recipe, trained["cube"])
    assert again.to_dict() == filled
    assert listing(lake, skip=("mlflow", "reports", ".locks")) == before, (
        "a re-run wrote other bytes or left staging behind"
    )


def flipped_latitude(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(lat=slice(None, None, -1))


def kelvin_air_temperature(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    out[cubes.T2M] = ds[cubes.T2M] + 273.15
    out[cubes.T2M].attrs = {**ds[cubes.T2M].attrs, "units": "K"}
    return out


def over_the_pacific(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(lat=ds["lat"] - 52.0, lon=ds["lon"] - 137.0)


@pytest.mark.parametrize(
    ("corrupt", "failed"),
    [
        (kelvin_air_temperature, "t2m_units_celsius"),
        (flipped_latitude, "latitude_descending"),
        (over_the_pacific, "overlaps_land"),
    ],
)
def test_a_bad_cube_is_quarantined_and_nothing_else_changes(
    prefect_server, small: tuple[Lake, GapfillRecipe, Path], tmp_path: Path, corrupt, failed: str
) -> None:
    from flows.gapfill import gapfill_train_flow
    from ml4l.quality import quarantined

    source, _, recipe_path = small
    lake = private_copy(source, tmp_path)
    path = cubes.cube_path(lake, "small")
    bad = corrupt(xr.open_zarr(path, consolidated=False).load())
    cubes.write_cube(lake, path, bad, 8)
    before = listing(lake, skip=("quarantine", "reports", ".locks"))
    state = gapfill_train_flow(recipe=str(recipe_path), lake_root=lake.root, return_state=True)
    assert state.is_failed()
    assert failed in state.message
    records = quarantined(lake)
    assert [(r["dataset"], r["key"]) for r in records] == [("gapfill_cube", "small")]
    assert failed in [f["name"] for f in records[0]["failed"]]
    after = listing(lake, skip=("quarantine", "reports", ".locks"))
    # only a land-mask cache entry may be new (a grid the lake had not seen); nothing else is written or changed
    assert {k: v for k, v in after.items() if not (k.startswith("gapfill/landmask/") and k not in before)} == before


# ---- a cube from the lake ----


def test_cube_from_the_lake_regrids_modis_and_era(ingested_lake: Lake) -> None:
    from ml4l.era_store import store_period
    from ml4l.nearest import nearest
    from ml4l.quality import validate

    path = cubes.build_from_lake(
        ingested_lake, north=50.0, west=0.0, rows=24, cols=36, recipe_json="{}", name="from-lake", time_chunk=8
    )
    ds = xr.open_zarr(path, consolidated=False)
    era, hours = store_period(ingested_lake.era_timevar)
    steps = pd.DatetimeIndex(ds["time"].values)
    assert len(steps) >= 2 and all(((s - pd.Timestamp(s.year, 1, 1)).days % 8) == 0 for s in steps)
    # one cell by hand: the mean of its nearest ERA cell's T2m over the step's hours, in °C
    cell, _ = nearest(era, np.array([ds["lat"].values[5]]), np.array([ds["lon"].values[7] % 360]))
    in_step = (hours >= steps[0]) & (hours < steps[0] + pd.Timedelta(days=8))
    expected = xr.open_zarr(ingested_lake.era_timevar)["t2m"].values[in_step][:, cell[0]].mean() - 273.15
    # float32 storage of values ~10 degC: ~1e-6 relative
    assert float(ds[cubes.T2M].values[0, 5, 7]) == pytest.approx(expected, abs=1e-4)
    table = cubes.cube_table(ingested_lake, path)
    outcome = validate(ingested_lake, cubes.DATASET, "from-lake", table)
    structural = {
        "dims_time_lat_lon",
        "lst_units_kelvin",
        "t2m_units_celsius",
        "latitude_descending",
        "longitude_ascending",
        "grid_one_twelfth_degree",
        "overlaps_land",
    }
    assert not structural & {f.name for f in outcome.failed}
