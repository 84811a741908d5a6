"""The tiles use case (seed 003): sample, per-tile checks and ledger, HDF5 layout, statistics, splits, resume, retries, model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from ml4l.config import RecipeError
from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.ml.splits import check_group_leakage
from ml4l.synthetic import SyntheticEarth
from ml4l.usecases.tiles import sample
from ml4l.usecases.tiles.build import assemble, build, read_tile_set, tile_grid, tile_groups
from ml4l.usecases.tiles.layout import TilesLake
from ml4l.usecases.tiles.ledger import DONE, FAILED, PENDING, Ledger
from ml4l.usecases.tiles.platform import modis_composite
from ml4l.usecases.tiles.recipe import TilesRecipe, load_recipe

# small and fast: one platform month of two MODIS days on a coarse grid, 40 tiles of 8 x 8 pixels
SMALL = {
    "name": "small",
    "seed": 11,
    "tiles": {"count": 40, "regions": 8, "size_deg": 2.0, "pixels": 8, "spread_deg": 2.0},
    "defects": {"missing": 1, "truncated": 1, "corrupt": 1, "wrong_band_count": 1, "late": 1},
    "platform": {"grid": "N32", "start": "2019-01", "end": "2019-01", "days": 2, "modis_resolution": 1.0},
    "build": {"batch": 8},
    "retry": {"max_attempts": 3, "base_delay_s": 0.4},
}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_recipe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiles-recipe") / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path


@pytest.fixture(scope="module")
def small_recipe(small_recipe_path: Path) -> TilesRecipe:
    return load_recipe(small_recipe_path)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory, small_recipe: TilesRecipe) -> tuple[Lake, sample.SampleReport]:
    """A lake with the small sample (and its platform lake); read-only for tests."""
    lake = Lake.at(str(tmp_path_factory.mktemp("tiles-sampled")))
    return lake, sample.generate(lake, small_recipe)


def _copy(source: Lake, target: Path) -> Lake:
    """A private copy of a sampled lake's inputs (no ledger, no products)."""
    for part in ("raw", "tiles/platform"):
        shutil.copytree(source.path(part), target / part)
    return Lake.at(str(target))


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, sampled: tuple[Lake, sample.SampleReport], small_recipe: TilesRecipe
):
    lake = _copy(sampled[0], tmp_path_factory.mktemp("tiles-built"))
    return lake, build(lake, small_recipe), sampled[1]


def test_recipe_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: gapfill\ntiles: {count: 2}\nretry: {max_attempts: 0}\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    message = str(caught.value)
    assert str(path) in message
    for field in ("field kind", "field tiles.count", "field retry.max_attempts"):
        assert field in message
    assert load_recipe(None).kind == "tiles"


def test_every_tile_is_in_the_hdf5_or_failed_with_its_reason(built) -> None:
    lake, report, sampled = built
    ids = read_tile_set(TilesLake(lake, "small").raw.geojson).ids
    ledger = Ledger(report.ledger).table().set_index("tile_id")
    with h5py.File(report.hdf5) as f:
        written = [t.decode() for t in f["metadata"]["tile_id"]]
    failed = ledger.index[ledger.state == FAILED]
    assert sorted(written + list(failed)) == sorted(ids)
    assert set(written) == set(ledger.index[ledger.state == DONE])
    assert not (ledger.state == PENDING).any()
    assert ledger.loc[failed, "reason"].str.len().gt(0).all()
    assert (ledger.attempts == 1).all()
    defects = sampled.defects
    expected = {
        "missing": ("GeoTIFF missing", True),
        "late": ("GeoTIFF missing", True),
        "truncated": ("GeoTIFF unreadable", True),
        "corrupt": ("GeoTIFF unreadable", True),
        "wrong_band_count": ("tile.band_count_matches_tile_info failed", False),
    }
    for kind, (reason, transient) in expected.items():
        for tile in defects[kind]:
            assert ledger.loc[tile, "state"] == FAILED
            assert ledger.loc[tile, "reason"].startswith(reason), (kind, ledger.loc[tile, "reason"])
            assert bool(ledger.loc[tile, "transient"]) is transient
    assert len(failed) == sum(len(v) for v in defects.values())


def test_hdf5_has_mmearth_layout(built, small_recipe: TilesRecipe) -> None:
    _, report, _ = built
    p = small_recipe.tiles.pixels
    with h5py.File(report.hdf5) as f:
        n = report.tiles_written
        for modality in small_recipe.modalities:
            dataset = f[modality.name]
            assert dataset.shape == (n, len(modality.bands), p, p) and dataset.dtype == np.float32
            assert dataset.chunks == (1, len(modality.bands), p, p) and dataset.compression == "gzip"
            assert list(dataset.attrs["bands"]) == list(modality.bands)
        assert f["era5"].shape == (n, 3) and f["modis_lst"].shape == (n, 1, p, p)
        assert f["lat"].shape == f["lon"].shape == f["month"].shape == (n,)
        assert set(f["metadata"].dtype.names) == {"tile_id", "crs", "date", "source"}
        assert json.loads(f.attrs["recipe"])["kind"] == "tiles" == f.attrs["kind"]
        era = f["era5"][...]
        assert np.all((era[:, 1] <= era[:, 0]) & (era[:, 0] <= era[:, 2]))  # min <= mean <= max
        lst = f["modis_lst"][...]
        assert np.isfinite(lst).any() and np.nanmin(lst) > 200 and np.nanmax(lst) < 340
    info = json.loads(Path(report.tile_info).read_text())
    assert len(info) == report.tiles_written and all(v["split"] in ("train", "val", "test") for v in info.values())


def test_band_statistics_equal_numpy_over_training_tiles(built, small_recipe: TilesRecipe) -> None:
    _, report, _ = built
    stats = json.loads(Path(report.band_stats).read_text())
    train = json.loads(Path(report.splits).read_text())["train"]
    assert stats["training_tiles"] == len(train) > 0
    with h5py.File(report.hdf5) as f:
        for name, per_band in stats["modalities"].items():
            values = f[name][...][np.asarray(train)].astype(np.float64)
            for k, band in enumerate(f[name].attrs["bands"]):
                x = values[:, k].ravel()
                x = x[~np.isnan(x)]
                got = per_band[band]
                assert got["count"] == x.size
                if not x.size:
                    continue
                # Chan merges against two-pass float64: both are exact to ~n * eps relative; 1e-6 is the contract
                for key, reference in (("mean", x.mean()), ("std", x.std()), ("min", x.min()), ("max", x.max())):
                    assert got[key] == pytest.approx(reference, rel=1e-6, abs=1e-12), (name, band, key)
                assert got["p50"] == pytest.approx(np.percentile(x, 50), rel=1e-6)
    # the validation and test tiles changed nothing: statistics over all tiles differ
    with h5py.File(report.hdf5) as f:
        everything = f["sentinel2"][...][:, 0].astype(np.float64)
    assert stats["modalities"]["sentinel2"]["B02"]["count"] < np.isfinite(everything).sum()


def test_splits_keep_regions_and_overlaps_together(built, small_recipe: TilesRecipe) -> None:
    lake, report, _ = built
    tile_set = read_tile_set(TilesLake(lake, small_recipe.name).raw.geojson)
    groups = tile_groups(tile_set.features)
    splits = json.loads(Path(report.splits).read_text())
    with h5py.File(report.hdf5) as f:
        written = [t.decode() for t in f["metadata"]["tile_id"]]
    labels = np.full(len(written), -1, dtype=np.int8)
    for label, key in enumerate(("train", "val", "test")):
        labels[splits[key]] = label
    assert (labels >= 0).all()
    group_of = dict(zip(tile_set.ids, groups, strict=True))
    check_group_leakage([group_of[t] for t in written], labels)
    regions = [f["properties"]["region"] for f in tile_set.features]
    assert len(set(groups)) <= len(set(regions))  # a group is at least a whole region
    # seeded: the same seed gives the same split, another seed another one
    again = assemble(lake, small_recipe)
    assert json.loads(Path(again.splits).read_text())["split_hash"] == splits["split_hash"]
    other = small_recipe.model_copy(update={"split": small_recipe.split.model_copy(update={"seed": 99})})
    try:
        assert json.loads(Path(assemble(lake, other).splits).read_text())["split_hash"] != splits["split_hash"]
    finally:
        assemble(lake, small_recipe)


def test_bad_values_crs_and_footprint_fail_only_their_tile(tmp_path: Path, sampled, small_recipe: TilesRecipe) -> None:
    lake = _copy(sampled[0], tmp_path)
    raw = TilesLake(lake, small_recipe.name).raw
    damaged = {t for tiles in sampled[1].defects.values() for t in tiles}
    good = [t for t in read_tile_set(raw.geojson).ids if t not in damaged]
    out_of_range, wrong_crs, shifted = good[:3]
    import rasterio

    def rewrite(tile: str, change_values: bool = False, crs: str = "EPSG:4326", shift: float = 0.0) -> None:
        with rasterio.open(raw.stack(tile)) as src:
            stack, bounds, names = src.read(), src.bounds, src.descriptions
        if change_values:
            stack[small_recipe.band_names.index("sentinel1:VV"), 0, 0] = 99.0  # dB: no radar sees that
        w, s, e, n = bounds
        sample.write_stack(raw.stack(tile), stack, names, (w + shift, s, e + shift, n), crs=crs)

    rewrite(out_of_range, change_values=True)
    rewrite(wrong_crs, crs="EPSG:3857")
    rewrite(shifted, shift=0.5)
    report = build(lake, small_recipe)
    ledger = Ledger(report.ledger).table().set_index("tile_id")
    assert (
        ledger.loc[out_of_range, "reason"]
        == "tile.values_not_above_valid_range failed (sentinel1): valid_max=10.0, max=99.0"
    )
    assert ledger.loc[wrong_crs, "reason"].startswith("tile.crs_matches_geojson failed: crs='EPSG:3857'")
    assert ledger.loc[shifted, "reason"].startswith("tile.footprint_matches_geojson failed: footprint_error_px=")
    assert not ledger.loc[[out_of_range, wrong_crs, shifted], "transient"].any()
    assert report.tiles_written == len(good) - 3


def test_reads_the_lakes_own_era_store_and_modis(ingested_lake: Lake, small_recipe: TilesRecipe) -> None:
    # conftest's tiny lake: N32 ERA store of 2019-01 and 2019-02, 2-degree MODIS, synthetic Earth of seed 7
    recipe = small_recipe.model_copy(update={"platform": small_recipe.platform.model_copy(update={"seed": 7})})
    written = sample.generate(ingested_lake, recipe)
    assert written.platform == "lake" and written.months == ["2019-01", "2019-02"]
    assert not Path(ingested_lake.path("tiles", "platform")).exists()
    report = build(ingested_lake, recipe)
    with h5py.File(report.hdf5) as f:
        era, months = f["era5"][...], f["month"][...]
        assert set(months) == {1, 2} and np.all((era > 200) & (era < 330))
        assert np.isfinite(f["modis_lst"][...]).any()
    # the oracle's truth is that Earth's: another Earth's truth at the same MODIS looks is refused
    features = read_tile_set(TilesLake(ingested_lake, recipe.name).raw.geojson).features
    grid = tile_grid(features, recipe)
    assert modis_composite(ingested_lake, grid, truth=SyntheticEarth(7)).noise_free is not None
    with pytest.raises(InputError, match="not that Earth's data"):
        modis_composite(ingested_lake, grid, truth=SyntheticEarth(20190101))


def _datasets(path: str) -> dict[str, np.ndarray]:
    with h5py.File(path) as f:
        return {name: f[name][...] for name in f} | {f"attr:{k}": np.asarray(v) for k, v in f.attrs.items()}


def test_killed_build_resumes_to_the_same_hdf5(
    tmp_path: Path, sampled, small_recipe: TilesRecipe, small_recipe_path: Path
) -> None:
    whole = _copy(sampled[0], tmp_path / "whole")
    killed = _copy(sampled[0], tmp_path / "killed")
    reference = build(whole, small_recipe)
    # the child commits a batch of 8 tiles, then slows down (its progress callback sleeps), so the kill lands mid-build
    script = textwrap.dedent(f"""
        import time
        from ml4l.lake import Lake
        from ml4l.usecases.tiles.build import build
        from ml4l.usecases.tiles.recipe import load_recipe
        build(Lake.at({killed.root!r}), load_recipe({str(small_recipe_path)!r}), progress=lambda tile: time.sleep(0.5))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    ledger = Ledger(TilesLake(killed, small_recipe.name).ledger)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if Path(ledger.path).exists() and ledger.counts()[DONE] >= 1:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the build ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    counts = ledger.counts()
    assert counts[DONE] >= 1 and counts[PENDING] > 0, counts
    assert not Path(TilesLake(killed, small_recipe.name).hdf5).exists()
    resumed = build(killed, small_recipe)
    expected, got = _datasets(reference.hdf5), _datasets(resumed.hdf5)
    assert expected.keys() == got.keys()
    for name in expected:
        assert expected[name].dtype == got[name].dtype, name
        assert expected[name].tobytes() == got[name].tobytes(), name  # bitwise, NaN included
    assert Path(reference.hdf5).read_bytes() == Path(resumed.hdf5).read_bytes()  # the whole file, byte for byte
    for product in ("band_stats", "splits", "tile_info"):
        assert Path(getattr(reference, product)).read_text() == Path(getattr(resumed, product)).read_text()
    assert (Ledger(resumed.ledger).table().attempts == 1).all()  # committed tiles were not done again


def test_model_beats_its_mean_baseline(built, small_recipe: TilesRecipe) -> None:
    from ml4l.ml.tracking import tracking_uri
    from ml4l.usecases.tiles.model import EXPERIMENT, train_and_evaluate

    lake, _, _ = built
    report = train_and_evaluate(lake, small_recipe)
    m = report.metrics
    assert m["test_rmse"] < m["baseline_mean_test_rmse"]
    assert m["oracle_test_rmse"] < m["test_rmse"]
    assert 0 < m["gap_closed"] <= 1
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(lake))
    logged = mlflow.get_run(report.run_id)
    assert mlflow.get_experiment(logged.info.experiment_id).name == EXPERIMENT
    for key in ("test_rmse", "baseline_mean_test_rmse", "oracle_test_rmse", "gap_closed"):
        assert logged.data.metrics[key] == pytest.approx(m[key])
    assert logged.data.params["recipe.kind"] == "tiles"


@pytest.mark.slow
def test_retry_failed_flow_retries_only_failed_tiles_with_backoff(
    prefect_server, tmp_path: Path, sampled, small_recipe: TilesRecipe, small_recipe_path: Path
) -> None:
    from flows.tiles import tiles_build_flow, tiles_retry_failed_flow

    lake = _copy(sampled[0], tmp_path)
    tiles_build_flow(recipe=str(small_recipe_path), lake_root=lake.root)
    before = Ledger(TilesLake(lake, small_recipe.name).ledger).table().set_index("tile_id")
    delivered = sample.deliver_late(lake, small_recipe)
    assert delivered == sampled[1].defects["late"]
    started = time.monotonic()
    result = tiles_retry_failed_flow(recipe=str(small_recipe_path), lake_root=lake.root)
    elapsed = time.monotonic() - started
    after = Ledger(TilesLake(lake, small_recipe.name).ledger).table().set_index("tile_id")
    assert sorted(result["retried"]) == sorted(before.index[before.state == FAILED])
    assert result["recovered"] == delivered
    assert (after.loc[delivered, "state"] == DONE).all() and (after.loc[delivered, "attempts"] == 2).all()
    untouched = before.index[before.state == DONE]
    assert (after.loc[untouched, "attempts"] == 1).all()
    retries = small_recipe.retry.max_attempts
    for kind in ("missing", "truncated", "corrupt"):
        for tile in sampled[1].defects[kind]:
            assert after.loc[tile, "state"] == FAILED and after.loc[tile, "attempts"] == 1 + retries
    band = sampled[1].defects["wrong_band_count"][0]
    assert after.loc[band, "attempts"] == 2  # a failed check is not retried
    assert elapsed >= sum(small_recipe.retry.base_delay_s * 2**k for k in range(retries - 1))
    with h5py.File(result["build"]["hdf5"]) as f:
        assert set(delivered) <= {t.decode() for t in f["metadata"]["tile_id"]}


def test_registered_as_a_use_case() -> None:
    from flows import registry
    from flows.tiles import tiles_demo_flow

    assert registry.load("tiles") is tiles_demo_flow
