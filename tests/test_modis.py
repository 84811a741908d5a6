"""MODIS readers: both formats decode to the same observations; bad files are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml4l.config import Recipe
from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.modis import find_modis, read_modis, utc_hours
from ml4l.sample import ModisGrid


def test_geotiff_and_netcdf_agree(sample_lake: Lake, tiny_recipe: Recipe) -> None:
    tif = read_modis(sample_lake.modis("2019-01-01", "tif"))
    nc = read_modis(sample_lake.modis("2019-01-01", "nc"))
    grid = ModisGrid(tiny_recipe.sample.modis_resolution)
    for image in (tif, nc):
        np.testing.assert_allclose(image.lat, grid.lat)
        np.testing.assert_allclose(image.lon, grid.lon)
        assert image.lst.dtype == np.float32 and image.lst.shape == grid.shape
    np.testing.assert_array_equal(np.isnan(tif.lst), np.isnan(nc.lst))
    np.testing.assert_allclose(tif.lst, nc.lst, atol=0.011)
    assert 200 < np.nanmin(tif.lst) and np.nanmax(tif.lst) < 340, "fill values became NaN, not 0 K"


def test_observed_pixels_and_their_utc_hours(sample_lake: Lake) -> None:
    image = read_modis(sample_lake.modis("2019-01-01", "tif"))
    lat, lon, lst, view = image.observed()
    assert lat.size == np.count_nonzero(~np.isnan(image.lst)) > 0
    assert not np.isnan(lst).any()
    utc = utc_hours(pd.Timestamp("2019-01-01"), lon, view)
    local_noon_ish = view.astype(np.float64)
    np.testing.assert_allclose(utc + lon / 15.0, local_noon_ish)
    assert -12 < utc.min() and utc.max() < 36


def test_find_prefers_geotiff_and_reports_absence(sample_lake: Lake) -> None:
    assert find_modis(sample_lake, "2019-01-01") == sample_lake.modis("2019-01-01", "tif")
    assert find_modis(sample_lake, "1999-01-01") is None


def test_bad_files_are_named(tmp_path: Path, sample_lake: Lake) -> None:
    junk = tmp_path / "aquaDay_2019-01-01.tif"
    junk.write_bytes(b"definitely not a tiff")
    with pytest.raises(InputError, match="aquaDay_2019-01-01.tif: cannot read GeoTIFF"):
        read_modis(str(junk))
    with pytest.raises(InputError, match="missing.nc: MODIS file is missing"):
        read_modis(str(tmp_path / "missing.nc"))

    import xarray as xr

    ds = xr.open_dataset(sample_lake.modis("2019-01-01", "nc"), engine="h5netcdf").drop_vars("Day_view_time")
    broken = tmp_path / "no_view_time.nc"
    ds.to_netcdf(broken, engine="h5netcdf")
    with pytest.raises(InputError, match="no_view_time.nc: missing variable\\(s\\) Day_view_time"):
        read_modis(str(broken))
