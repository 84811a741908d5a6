"""The monthly join: schema, thresholds, counts, features and an independent pandas reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr

from ml4l.config import Recipe
from ml4l.errors import InputError
from ml4l.join import FEATURE_COLUMNS, join_month, joined_schema, month_days, read_joined
from ml4l.lake import Lake
from ml4l.nearest import nearest
from ml4l.grids import grid
from ml4l.usecases.lst.sample import ModisDay, ModisGrid, write_modis_geotiff

MONTH = "2019-02"


@pytest.fixture
def joined(ingested_lake: Lake, tiny_recipe: Recipe) -> tuple[Lake, pd.DataFrame, dict]:
    summary = join_month(ingested_lake, MONTH, tiny_recipe.join)
    return ingested_lake, read_joined(ingested_lake, MONTH), summary.to_dict()


def test_schema_threshold_and_counts(joined, tiny_recipe: Recipe) -> None:
    lake, table, summary = joined
    assert pq.read_schema(f"{lake.joined_month(MONTH)}/part-0.parquet").remove_metadata() == joined_schema()
    assert len(table) == summary["rows"] > 0
    assert table["distance_km"].max() <= tiny_recipe.join.threshold_km
    assert (table["lst_count"] >= 1).all()
    assert not table.duplicated(["time", "cell"]).any()
    counts = summary["counts"]
    assert table["lst_count"].sum() == counts["matched"]
    assert counts["observed"] == counts["matched"] + counts["beyond_threshold"] + counts["beyond_lat"] + counts["no_era"]
    assert counts["beyond_threshold"] > 0 and counts["beyond_lat"] > 0
    assert (table["latitude"].abs() < tiny_recipe.join.lat_limit + 3).all()
    assert summary["hours_with_data"] + summary["empty_hours"] == 24


def test_features_equal_the_era_stores(joined) -> None:
    lake, table, _ = joined
    timevar = xr.open_zarr(lake.era_timevar)
    constants = xr.open_zarr(lake.era_constants)
    t = timevar.sel(time=xr.DataArray(table["time"].values, dims="row"))
    cells = xr.DataArray(table["cell"].values, dims="row")
    for name in ("t2m", "skt", "sd", "fal"):
        np.testing.assert_array_equal(table[name].values, t[name].isel(cell=cells).values)
    for name in ("cvh_v15", "cvh_v20", "z_v20", "cl_saline"):
        np.testing.assert_array_equal(table[name].values, constants[name].isel(cell=cells).values)
    months = xr.DataArray(table["time"].dt.month.values, dims="row")
    np.testing.assert_array_equal(table["clake"].values, constants["clake"].sel(month=months).isel(cell=cells).values)
    g = grid(timevar.attrs["grid"])
    np.testing.assert_array_equal(table["latitude"].values, g.lat[table["cell"].values])
    assert list(table.columns[8:]) == list(FEATURE_COLUMNS)


def sample_pixels(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitude, longitude, LST (K) and local solar view hour of the observed pixels of a sample GeoTIFF, decoded here."""
    with rasterio.open(path) as src:
        lst, view, t = src.read(1), src.read(2), src.transform
        lst_scale, view_scale = src.scales
    rows, cols = np.nonzero((lst != 0) & (view != 0))
    return t.f + t.e * (rows + 0.5), t.c + t.a * (cols + 0.5), lst[rows, cols] * lst_scale, view[rows, cols] * view_scale


def test_matches_a_pandas_reference(joined, tiny_recipe: Recipe) -> None:
    """Rebuild the month from the MODIS files with a pandas groupby."""
    lake, table, _ = joined
    hours = pd.DatetimeIndex(xr.open_zarr(lake.era_timevar)["time"].values)
    frames = []
    for day in month_days(lake, MONTH):
        path = lake.modis(day, "tif")
        if not os.path.exists(path):
            continue
        lat, lon, lst, view = sample_pixels(path)
        time = pd.Timestamp(day) + pd.to_timedelta(np.floor(view - lon / 15.0 + 0.5), unit="h")  # local solar day and hour
        frames.append(pd.DataFrame({"lat": lat, "lon": lon, "lst": lst.astype(np.float64), "time": time}))
    pixels = pd.concat(frames)
    pixels = pixels[pixels["time"].isin(hours) & (pixels["time"].dt.strftime("%Y-%m") == MONTH) & (pixels["lat"].abs() < 70)]
    # the same engine as the join: 2-degree pixels sit exactly half-way between N32 points
    # of some rows, and engines may break such ties differently (test_nearest checks exactness)
    pixels["cell"], pixels["distance"] = nearest(grid(tiny_recipe.grid), pixels["lat"].values, pixels["lon"].values, "grid")
    pixels = pixels[pixels["distance"] <= tiny_recipe.join.threshold_km]
    reference = (
        pixels.groupby(["time", "cell"])
        .agg(lst=("lst", "mean"), lst_count=("lst", "size"), lst_std=("lst", lambda x: x.std(ddof=0)), distance_km=("distance", "mean"))
        .reset_index()
    )
    got = table.set_index(["time", "cell"]).sort_index()
    reference = reference.set_index(["time", "cell"]).sort_index()
    assert got.index.equals(reference.index)
    np.testing.assert_array_equal(got["lst_count"], reference["lst_count"])
    np.testing.assert_allclose(got["lst"], reference["lst"], rtol=1e-6)
    np.testing.assert_allclose(got["lst_std"], reference["lst_std"], atol=1e-3)
    np.testing.assert_allclose(got["distance_km"], reference["distance_km"], rtol=1e-5)


def test_rejoining_is_idempotent_and_leaves_nothing_hidden(joined, tiny_recipe: Recipe) -> None:
    lake, first, _ = joined
    join_month(lake, MONTH, tiny_recipe.join)
    pd.testing.assert_frame_equal(read_joined(lake, MONTH), first)
    joined_dir = Path(lake.path("joined"))
    leftovers = [p.name for p in joined_dir.rglob("*") if p.name.startswith(".") or "_staging" in str(p.relative_to(joined_dir))]
    assert leftovers == [] or leftovers == ["_staging"]
    assert sorted(p.name for p in Path(lake.joined_month(MONTH)).iterdir()) == ["_summary.json", "part-0.parquet"]


def test_missing_and_cloudy_days_are_counted(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    lake = ingested_lake
    os.remove(lake.modis("2019-02-01", "tif"))
    os.remove(lake.modis("2019-02-01", "nc"))
    modis_grid = ModisGrid(tiny_recipe.sample.modis_resolution)
    cloud = np.full(modis_grid.shape, np.nan, dtype=np.float32)
    write_modis_geotiff(lake.modis("2019-01-31", "tif"), ModisDay(cloud, cloud), modis_grid)  # all cloud
    summary = join_month(lake, MONTH, tiny_recipe.join)
    assert summary.counts.missing_days == ["2019-02-01"]
    assert summary.counts.files_missing == 1 and summary.counts.observed == 0
    assert summary.rows == 0 and summary.empty_hours == 24
    assert len(read_joined(lake, MONTH)) == 0


def test_unreadable_modis_keeps_the_previous_month(joined, tiny_recipe: Recipe) -> None:
    lake, before, _ = joined
    Path(lake.modis("2019-02-01", "tif")).write_bytes(b"garbage")
    with pytest.raises(InputError, match="aquaDay_errorGTE03K_04km_2019-02-01.tif: not a MODIS file"):
        join_month(lake, MONTH, tiny_recipe.join)
    pd.testing.assert_frame_equal(read_joined(lake, MONTH), before)


def test_a_month_not_ingested_is_refused(raw_lake: Lake, tiny_recipe: Recipe) -> None:
    from ml4l.era_store import create_timevar_store, ingest_constants

    create_timevar_store(raw_lake, tiny_recipe.grid, tiny_recipe.period)
    ingest_constants(raw_lake)
    with pytest.raises(InputError, match="ERA month 2019-02 is not ingested"):
        join_month(raw_lake, MONTH, tiny_recipe.join)


def test_a_day_read_in_blocks_of_rows_joins_the_same_month(ingested_lake: Lake, tiny_recipe: Recipe, monkeypatch) -> None:
    """A full-size day is read and matched a block of rows at a time: the month's bytes are those of whole days."""
    import ml4l.join

    whole = join_month(ingested_lake, MONTH, tiny_recipe.join)
    whole_bytes = Path(ingested_lake.joined_month(MONTH), "part-0.parquet").read_bytes()
    monkeypatch.setattr(ml4l.join, "_BLOCK_ROWS", 7)  # the tiny recipe's 90 rows in 13 blocks, the last short
    blocks = join_month(ingested_lake, MONTH, tiny_recipe.join)
    assert Path(ingested_lake.joined_month(MONTH), "part-0.parquet").read_bytes() == whole_bytes
    assert blocks.to_dict() == whole.to_dict() and whole.rows > 0


def test_the_month_written_in_row_groups_is_the_table_written_whole(tmp_path) -> None:
    """The month is streamed to Parquet a day at a time, in the row groups pyarrow gives a whole table."""
    from ml4l.join import _RowGroupWriter

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"time": pd.date_range("2019-01-01", periods=50, freq="h"), "x": rng.normal(size=50).astype(np.float32)})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "whole.parquet", row_group_size=8)
    with open(tmp_path / "streamed.parquet", "wb") as out, _RowGroupWriter(out, row_group_rows=8) as writer:
        for start, stop in ((0, 3), (3, 20), (20, 21), (21, 40), (40, 50)):  # pieces shorter and longer than a group
            writer.write(table.slice(start, stop - start))
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "streamed.parquet").metadata.num_row_groups == 7
