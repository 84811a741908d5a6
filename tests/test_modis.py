"""MODIS readers on files written here: the sample's forms, bad downloads, the raw folder, a month of tiles."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from ml4l import read_modis
from ml4l.config import Recipe
from ml4l.usecases.lst.dataset import SplitConfig, build_ml_ready, read_split
from ml4l.era_store import create_timevar_store, ingest_constants, ingest_month
from ml4l.errors import InputError
from ml4l.join import join_month
from ml4l.lake import Lake
from ml4l.readers.modis import hours_after_midnight
from ml4l.readers.modis.folder import combine, read_day, scan_folder
from ml4l.usecases.lst.sample import ModisDay, ModisGrid, SampleWriter, generate, modis_tile_name, write_modis_geotiff

DAY = "2019-01-01"


def write_layer(
    path: Path,
    values: np.ndarray,
    dtype: str,
    nodata: float | None = None,
    scale: float | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """One-band EPSG:4326 GeoTIFF at 0.01 degrees from (-105, 40), as AppEEARS writes a layer."""
    profile = {
        "driver": "GTiff",
        "height": values.shape[0],
        "width": values.shape[1],
        "count": 1,
        "dtype": dtype,
        "crs": "EPSG:4326",
        "transform": from_origin(-105.0, 40.0, 0.01, 0.01),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(dtype), 1)
        if scale is not None:
            dst.scales = (scale,)
        dst.update_tags(**(tags or {}))


def appeears(tmp_path: Path, layer: str) -> Path:
    return tmp_path / f"MYD11A1.061_{layer}_doy2019032_aid0001.tif"


RAW_LST = np.array([[15000, 0, 14500], [14000, 15500, 0]], dtype=np.uint16)  # 300, fill, 290 / 280, 310, fill K


def test_sample_geotiff_and_netcdf_agree(sample_lake: Lake) -> None:
    (tif,), (nc,) = read_modis(sample_lake.modis(DAY, "tif")), read_modis(sample_lake.modis(DAY, "nc"))
    for day in (tif, nc):
        assert (day.attrs["date"], day.attrs["date_source"], day.attrs["platform"]) == (DAY, "content", "Aqua")
        assert day["lst"].dtype == np.float32 and day.sizes["pixel"] > 0
    np.testing.assert_array_equal(tif["latitude"], nc["latitude"])
    np.testing.assert_array_equal(tif["longitude"], nc["longitude"])
    np.testing.assert_allclose(tif["lst"], nc["lst"], rtol=0, atol=0.011)  # both 0.02 K a count
    np.testing.assert_allclose(tif["view_time"], nc["view_time"], rtol=0, atol=0.051)  # 0.01 h against 0.1 h a count
    assert 200 < float(tif["lst"].min()) and float(tif["lst"].max()) < 340


def test_utc_hours_come_back_to_the_local_solar_day(sample_lake: Lake) -> None:
    path = sample_lake.modis(DAY, "tif")
    with rasterio.open(path) as src:
        local = src.read(2) * src.scales[1]
        t = src.transform
    (day,) = read_modis(path)
    rows = np.round((t.f - day["latitude"].to_numpy()) / -t.e - 0.5).astype(int)
    cols = np.round((day["longitude"].to_numpy() - t.c) / t.a - 0.5).astype(int)
    expected = local[rows, cols] - day["longitude"].to_numpy() / 15.0  # hours after 00:00 UTC of the local day
    np.testing.assert_allclose(hours_after_midnight(day), expected, rtol=0, atol=1e-6)
    assert 0 <= float(day["view_time"].min()) and float(day["view_time"].max()) < 24


def test_scale_only_in_the_tags_is_applied(tmp_path: Path) -> None:
    """The 50x bug: GDAL reports scale 1 when the scale sits only in the tags."""
    write_layer(appeears(tmp_path, "LST_Day_1km"), RAW_LST, "uint16", nodata=0, tags={"scale_factor": "0.02"})
    (day,) = read_modis(str(appeears(tmp_path, "LST_Day_1km")))
    np.testing.assert_allclose(np.sort(day["lst"].to_numpy()), [280.0, 290.0, 300.0, 310.0], rtol=0, atol=1e-4)
    assert (day.attrs["date"], day.attrs["date_source"]) == ("2019-02-01", "name")


def test_a_scale_that_leaves_counts_is_an_error(tmp_path: Path) -> None:
    path = appeears(tmp_path, "LST_Day_1km")
    write_layer(path, RAW_LST, "uint16", nodata=0, tags={"scale_factor": "1"})
    with pytest.raises(
        InputError, match=rf"{path.name}: 4 of 4 LST_Day_1km values lie outside 150-380 K after scaling by 1"
    ):
        read_modis(str(path))


def test_companion_layers_qc_and_view_time_fill(tmp_path: Path) -> None:
    write_layer(appeears(tmp_path, "LST_Day_1km"), RAW_LST, "uint16", nodata=0, scale=0.02)
    qc = np.array(
        [[0b00000000, 0, 0b11000000], [0b01000001, 0b10, 0]], dtype=np.uint8
    )  # <=1K, -, >3K / <=2K other, not produced, -
    write_layer(appeears(tmp_path, "QC_Day"), qc, "uint8")
    view = np.array(
        [[135, 255, 131], [255, 129, 255]], dtype=np.uint8
    )  # 13.5 h, fill, 13.1 / fill, 12.9, fill; no nodata set
    write_layer(appeears(tmp_path, "Day_view_time"), view, "uint8", scale=0.1)
    (day,) = read_modis(str(appeears(tmp_path, "LST_Day_1km")))
    # kept: (0, 0) only; (1, 0) passes QC but its view time is the fill 255, not 25.5 h
    assert day.sizes["pixel"] == 1 and day.attrs["view_time_source"] == "file"
    assert float(day["lst"][0]) == pytest.approx(300.0, abs=1e-4)
    assert float(day["view_time"][0]) == pytest.approx(13.5 - float(day["longitude"][0]) / 15.0, abs=1e-9)
    counts = day.attrs["qc_counts"]
    assert (counts["error_le_1K"], counts["error_le_2K"], counts["error_gt_3K"], counts["not_produced"]) == (1, 1, 1, 3)
    (lenient,) = read_modis(str(appeears(tmp_path, "LST_Day_1km")), max_lst_error_k=None)
    assert lenient.sizes["pixel"] == 2, "the > 3 K pixel comes back; the view-time fill and the not produced do not"


def test_the_seeds_own_form_uses_the_nominal_overpass(tmp_path: Path) -> None:
    lst = np.array([[300.5, np.nan], [np.nan, 280.25]], dtype=np.float32)
    path = tmp_path / "aquaDay_errorGTE03K_04km_2019-02-01.tif"
    write_layer(path, lst, "float32")
    (day,) = read_modis(str(path))
    np.testing.assert_array_equal(day["lst"], [300.5, 280.25])
    assert (day.attrs["platform"], day.attrs["view_time_source"], day.attrs["date_source"]) == (
        "Aqua",
        "nominal overpass",
        "name",
    )
    np.testing.assert_allclose(day["view_time"], np.mod(13.5 - day["longitude"] / 15.0, 24), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(day["qc"], [-1, -1])
    assert day.attrs["qc_counts"]["no_qc"] == 2


def test_a_date_inside_that_disagrees_with_the_name_is_an_error(tmp_path: Path, tiny_recipe: Recipe) -> None:
    grid = ModisGrid(tiny_recipe.sample.modis_resolution)
    lst = np.full(grid.shape, 290.0, dtype=np.float32)
    path = tmp_path / "aquaDay_errorGTE03K_04km_2019-02-02.tif"
    write_modis_geotiff(
        str(path), ModisDay(lst, np.full(grid.shape, 13.5, dtype=np.float32)), grid, pd.Timestamp("2019-02-01")
    )
    with pytest.raises(
        InputError, match=rf"{path.name}: the file says it holds 2019-02-01 but its name says 2019-02-02"
    ):
        read_modis(str(path))


def test_bad_files_are_named(tmp_path: Path) -> None:
    junk = tmp_path / "aquaDay_2019-01-01.tif"
    junk.write_bytes(b"definitely not a tiff")
    with pytest.raises(InputError, match="aquaDay_2019-01-01.tif: not a MODIS file: starts with b'defi'"):
        read_modis(str(junk))
    with pytest.raises(InputError, match="missing.nc: MODIS file is missing"):
        read_modis(str(tmp_path / "missing.nc"))
    with pytest.raises(InputError, match=f"{tmp_path.name}: is a directory"):
        read_modis(str(tmp_path))
    truncated = tmp_path / "MYD11A1.A2019001.h18v04.061.2019003000000.hdf"
    truncated.write_bytes(b"\x0e\x03\x13\x01" + b"\0" * 100)
    with pytest.raises(InputError, match=f"{truncated.name}: cannot read HDF4"):
        read_modis(str(truncated))


# ---- HDF4 tiles written by the sample ----

TILES = ("h26v07", "h27v07")  # adjacent, with land the synthetic swath sees on each sample day


@pytest.fixture(scope="module")
def tile_recipe(tiny_recipe: Recipe) -> Recipe:
    sample = dataclasses.replace(tiny_recipe.sample, modis_resolution=1.0, modis_formats=("hdf",), modis_tiles=TILES)
    return dataclasses.replace(tiny_recipe, sample=sample)


def test_sample_tiles_read_back_and_combine(tmp_path: Path, tile_recipe: Recipe) -> None:
    lake = Lake.at(str(tmp_path))
    paths = SampleWriter(tile_recipe, lake).modis_day(pd.Timestamp(DAY))
    assert [Path(p).name for p in paths] == [modis_tile_name(pd.Timestamp(DAY), t) for t in TILES]
    days = [read_modis(p)[0] for p in paths]
    for day in days:
        assert (day.attrs["date"], day.attrs["date_source"], day.attrs["format"]) == (DAY, "content", "hdf4")
        south, north, west, east = day.attrs["footprint"]
        assert day.sizes["pixel"] > 0
        assert south <= float(day["latitude"].min()) and float(day["latitude"].max()) <= north
        assert west <= float(day["longitude"].min()) and float(day["longitude"].max()) <= east
    both = combine(days)
    assert both.sizes["pixel"] == sum(d.sizes["pixel"] for d in days) and both.attrs["duplicates_dropped"] == 0
    again = combine([days[1], days[0], days[0]])  # a tile twice: its pixels once, in source order
    assert again.sizes["pixel"] == both.sizes["pixel"]
    np.testing.assert_array_equal(again["lst"], both["lst"])


def test_raw_folder_duplicates_and_unexpected_files(tmp_path: Path, tile_recipe: Recipe, sample_lake: Lake) -> None:
    lake = Lake.at(str(tmp_path))
    first = Path(SampleWriter(tile_recipe, lake).modis_day(pd.Timestamp(DAY))[0])
    folder = Path(lake.path("raw", "MODIS"))
    for name in ("aquaDay_errorGTE03K_04km_2019-01-01.tif", "aquaDay_errorGTE03K_04km_2019-01-01.nc"):
        shutil.copy(Path(sample_lake.path("raw", "MODIS")) / name, folder / name)
    (folder / "aquaDay_errorGTE03K_04km_2019-01-01 (1).tif").write_bytes(b"x")
    (folder / "notes.txt").write_text("downloaded by hand")
    found = scan_folder(lake)
    assert [Path(p).name for p in found.unexpected] == ["aquaDay_errorGTE03K_04km_2019-01-01 (1).tif", "notes.txt"]
    assert [Path(p).name for p in found.not_read] == ["aquaDay_errorGTE03K_04km_2019-01-01.nc"]
    assert len(found.files_of(DAY)) == 3  # two tiles and the seed's GeoTIFF
    reprocessed = first.with_name(first.name.replace("2019003000000", "2019010123456"))
    shutil.copy(first, reprocessed)
    with pytest.raises(InputError, match=f"{reprocessed.name}: duplicates {first.name} for {DAY}"):
        read_day(lake, DAY)


def test_a_month_of_tiles_through_ingest_join_and_dataset(tmp_path: Path, tile_recipe: Recipe) -> None:
    start = time.perf_counter()
    period = dataclasses.replace(tile_recipe.period, start="2019-01", end="2019-03", days=3)
    recipe = dataclasses.replace(tile_recipe, period=period)
    lake = Lake.at(str(tmp_path))
    generate(recipe, lake)
    create_timevar_store(lake, recipe.grid, recipe.period)
    ingest_constants(lake)
    summaries = {}
    for month in recipe.period.months:
        ingest_month(lake, month)
        summaries[month] = join_month(lake, month, recipe.join)
    january = summaries["2019-01"].counts
    assert january.files_read >= 3 * len(TILES) and january.matched > 0 and not january.missing_days
    assert january.qc_classes["error_gt_3K"] > 0, "the sample's > 3 K pixels are counted"
    assert january.unexpected_files == [] and january.dates_from_name == []
    kept = sum(read_day(lake, d.strftime("%Y-%m-%d")).data.sizes["pixel"] for d in recipe.period.days_of("2019-01"))  # type: ignore[union-attr]
    produced = sum(january.qc_classes[c] for c in ("error_le_1K", "error_le_2K", "error_le_3K"))
    assert kept == produced, "the default filter keeps error classes up to 3 K"
    build_ml_ready(
        lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2019-02", "2019-02"), test=("2019-03", "2019-03"))
    )
    assert len(read_split(lake, "train")) > 0
    assert time.perf_counter() - start < 90
