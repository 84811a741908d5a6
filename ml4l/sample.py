"""Sample inputs in the real formats and the file layout of seed 000, from :mod:`ml4l.synthetic`.

ERA fields are written as GRIB1 by ecCodes on the recipe's reduced Gaussian grid;
MODIS Aqua-day LST as GeoTIFF (GDAL, via rasterio) and/or CF NetCDF, with the
product's own encoding: LST as uint16 scaled by 0.02 K with 0 as fill, view time
in local solar hours.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml4l.config import Recipe
from ml4l.grib import GribWriter, write_fields
from ml4l.grids import Grid, grid
from ml4l.lake import Lake
from ml4l.synthetic import SyntheticEarth
from ml4l.types import FloatArray, Month
from ml4l.variables import CONSTANT, GROUPS, LAKE_COVER, SALINE_LAKE, Variable

LST_SCALE = 0.02
VIEW_TIME_SCALE_TIF = 0.01
VIEW_TIME_SCALE_NC = 0.1
_ROW_BLOCK = 64

Progress = Callable[[str], None]


def hours_since_epoch(times: pd.DatetimeIndex | pd.Timestamp) -> FloatArray:
    """Hours since 1970-01-01 UTC."""
    return np.asarray((pd.DatetimeIndex(np.atleast_1d(times)) - pd.Timestamp("1970-01-01")) / pd.Timedelta(hours=1))


@dataclass(frozen=True)
class ModisGrid:
    """MODIS' regular lat-lon grid, pixel centred, rows north to south, columns from -180."""

    resolution: float

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return round(180.0 / self.resolution), round(360.0 / self.resolution)

    @property
    def lat(self) -> FloatArray:
        """Latitude of each row's centre."""
        return 90.0 - self.resolution * (np.arange(self.shape[0]) + 0.5)

    @property
    def lon(self) -> FloatArray:
        """Longitude of each column's centre."""
        return -180.0 + self.resolution * (np.arange(self.shape[1]) + 0.5)


@dataclass(frozen=True)
class ModisDay:
    """One day of MODIS Aqua-day observations: LST (K) and local solar view hour, NaN where missing."""

    lst: np.ndarray
    view_time: np.ndarray


class SampleWriter:
    """Writes sample inputs for a recipe into a lake."""

    def __init__(self, recipe: Recipe, lake: Lake) -> None:
        self.recipe = recipe
        self.lake = lake
        self.grid: Grid = grid(recipe.grid)
        self.earth = SyntheticEarth(recipe.sample.seed)
        self.modis_grid = ModisGrid(recipe.sample.modis_resolution)

    # ---- ERA ----

    def era_month(self, month: Month) -> list[str]:
        """Write the month's ERA_sfc and ERA_skin files, hour by hour."""
        targets = {"sfc": self.lake.era_sfc(month), "skin": self.lake.era_skin(month)}
        v15 = self.earth.constants(self.grid.lat, self.grid.lon, 15)
        bits = self.recipe.sample.bits_per_value
        with self._staged(targets["sfc"]) as sfc_path, self._staged(targets["skin"]) as skin_path:
            with GribWriter(sfc_path, self.grid, bits) as sfc, GribWriter(skin_path, self.grid, bits) as skin:
                for time in self.recipe.period.hours_of(month):
                    weather = self.earth.weather(self.grid.lat, self.grid.lon, hours_since_epoch(time)[0], v15)
                    for group, writer in (("sfc", sfc), ("skin", skin)):
                        for variable in GROUPS[group]:  # type: ignore[index]
                            writer.write(variable, time, weather[variable.name])
        return list(targets.values())

    def era_constants(self) -> list[str]:
        """Write climate V15 and V20, the 12 monthly lake-cover files and the saline-lake file."""
        lat, lon = self.grid.lat, self.grid.lon
        reference = pd.Timestamp("2000-01-01")
        written = []
        for version in (15, 20):
            values = self.earth.constants(lat, lon, version)
            fields = ((v, reference, values[v.name]) for v in CONSTANT)
            written.append(self._write_grib(self.lake.climate(version), fields))
        lakes_v20 = self.earth.constants(lat, lon, 20)["cl"]
        for calendar_month in range(1, 13):
            cover = self.earth.lake_cover(lakes_v20, lat, calendar_month)
            when = pd.Timestamp(year=2000, month=calendar_month, day=1)
            written.append(self._write_grib(self.lake.lake_cover(calendar_month), [(LAKE_COVER, when, cover)]))
        saline = self.earth.saline_lakes(lakes_v20, lat, lon)
        written.append(self._write_grib(self.lake.saline_lakes(), [(SALINE_LAKE, reference, saline)]))
        return written

    def _write_grib(self, target: str, fields: Iterable[tuple[Variable, pd.Timestamp, FloatArray]]) -> str:
        with self._staged(target) as local:
            write_fields(local, self.grid, fields, self.recipe.sample.bits_per_value)
        return target

    # ---- MODIS ----

    def modis_observations(self, day: pd.Timestamp) -> ModisDay:
        """LST and view time of one day on the MODIS grid (NaN: ocean, outside swath, cloud)."""
        rows, cols = self.modis_grid.shape
        lst = np.full((rows, cols), np.nan, dtype=np.float32)
        view = np.full((rows, cols), np.nan, dtype=np.float32)
        day_start = float(hours_since_epoch(day)[0])
        lon_row = self.modis_grid.lon
        for first in range(0, rows, _ROW_BLOCK):
            block_lat = self.modis_grid.lat[first : first + _ROW_BLOCK]
            lat2, lon2 = np.meshgrid(block_lat, lon_row, indexing="ij")
            utc, view_hour = self.earth.overpass(lat2, lon2, day_start)
            seen = ~np.isnan(utc) & (self.earth.land_sea_mask(lat2, lon2) > 0.5)
            seen[seen] = ~self.earth.cloudy(lat2[seen], lon2[seen], utc[seen])
            if not seen.any():
                continue
            rng = np.random.default_rng([self.recipe.sample.seed, int(day_start), first])
            truth = self.earth.lst(lat2[seen], lon2[seen], utc[seen], day.month, rng)
            block = (slice(first, first + _ROW_BLOCK), slice(None))
            lst[block][seen] = truth
            view[block][seen] = view_hour[seen]
        return ModisDay(lst, view)

    def modis_day(self, day: pd.Timestamp) -> list[str]:
        """Write one day of MODIS in every configured format."""
        observed = self.modis_observations(day)
        written = []
        for extension in self.recipe.sample.modis_formats:
            target = self.lake.modis(day.strftime("%Y-%m-%d"), extension)
            with self._staged(target) as local:
                if extension == "tif":
                    write_modis_geotiff(local, observed, self.modis_grid)
                elif extension == "nc":
                    write_modis_netcdf(local, observed, self.modis_grid, day)
                else:
                    raise ValueError(f"unknown MODIS format {extension!r}: expected tif or nc")
            written.append(target)
        return written

    def month(self, month: Month) -> list[str]:
        """Write one month: its ERA_sfc and ERA_skin GRIB, then each of its MODIS days."""
        written = self.era_month(month)
        for day in self.recipe.period.days_of(month):
            written += self.modis_day(day)
        return written

    # ---- staging ----

    class _Staged:
        def __init__(self, lake: Lake, target: str) -> None:
            self.lake, self.target = lake, target
            self.tmpdir: str | None = None

        def __enter__(self) -> str:
            if self.lake.is_local:
                Path(self.target).parent.mkdir(parents=True, exist_ok=True)
                return self.target
            self.tmpdir = tempfile.mkdtemp(prefix="ml4l-")
            return os.path.join(self.tmpdir, os.path.basename(self.target))

        def __exit__(self, kind: object, error: object, trace: object) -> None:
            if self.tmpdir is None:
                return
            try:
                if error is None:
                    self.lake.fs.put(os.path.join(self.tmpdir, os.path.basename(self.target)), self.target)
            finally:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _staged(self, target: str) -> _Staged:
        """A local path to write ``target`` to; remote lakes get it uploaded on success."""
        return self._Staged(self.lake, target)


def _encode(values: np.ndarray, scale: float, fill: int, dtype: type) -> np.ndarray:
    encoded = np.full(values.shape, fill, dtype=dtype)
    ok = ~np.isnan(values)
    encoded[ok] = np.clip(np.round(values[ok] / scale), 1, np.iinfo(dtype).max - (fill == np.iinfo(dtype).max))
    return encoded


def write_modis_geotiff(path: str, day: ModisDay, modis_grid: ModisGrid) -> None:
    """Two-band GeoTIFF (EPSG:4326): LST_Day (uint16, 0.02 K) and Day_view_time (uint16, 0.01 h); 0 is fill."""
    import rasterio
    from rasterio.transform import from_origin

    rows, cols = modis_grid.shape
    partial = path + ".partial"
    profile = {
        "driver": "GTiff",
        "height": rows,
        "width": cols,
        "count": 2,
        "dtype": "uint16",
        "crs": "EPSG:4326",
        "transform": from_origin(-180.0, 90.0, modis_grid.resolution, modis_grid.resolution),
        "nodata": 0,
        "compress": "deflate",
        "tiled": True,
    }
    try:
        with rasterio.open(partial, "w", **profile) as dst:
            dst.write(_encode(day.lst, LST_SCALE, 0, np.uint16), 1)
            dst.write(_encode(day.view_time, VIEW_TIME_SCALE_TIF, 0, np.uint16), 2)
            dst.scales = (LST_SCALE, VIEW_TIME_SCALE_TIF)
            dst.offsets = (0.0, 0.0)
            dst.units = ("K", "h")
            dst.descriptions = ("LST_Day", "Day_view_time")
            dst.update_tags(product="MYD11A1-like synthetic sample", view_time="local solar time")
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def write_modis_netcdf(path: str, day: ModisDay, modis_grid: ModisGrid, date: pd.Timestamp) -> None:
    """CF NetCDF: LST_Day (uint16, 0.02 K, fill 0) and Day_view_time (uint8, 0.1 h, fill 255) on (lat, lon)."""
    import xarray as xr

    dims = ("lat", "lon")
    ds = xr.Dataset(
        {"LST_Day": (dims, day.lst), "Day_view_time": (dims, day.view_time)},
        coords={"lat": modis_grid.lat, "lon": modis_grid.lon},
        attrs={"title": "MYD11A1-like synthetic sample", "date": date.strftime("%Y-%m-%d"), "Conventions": "CF-1.8"},
    )
    ds["LST_Day"].attrs = {"units": "K", "long_name": "Daytime land surface temperature"}
    ds["Day_view_time"].attrs = {"units": "h", "long_name": "Local solar time of the day observation"}
    ds["lat"].attrs = {"units": "degrees_north", "standard_name": "latitude"}
    ds["lon"].attrs = {"units": "degrees_east", "standard_name": "longitude"}
    encoding = {
        "LST_Day": {"dtype": "uint16", "scale_factor": LST_SCALE, "_FillValue": 0, "zlib": True},
        "Day_view_time": {"dtype": "uint8", "scale_factor": VIEW_TIME_SCALE_NC, "_FillValue": 255, "zlib": True},
    }
    partial = path + ".partial"
    try:
        ds.to_netcdf(partial, engine="h5netcdf", encoding=encoding)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def generate(recipe: Recipe, lake: Lake, progress: Progress | None = None) -> list[str]:
    """Write every sample input of ``recipe``: ERA constants, ERA months and MODIS days."""
    writer = SampleWriter(recipe, lake)
    report = progress or (lambda _: None)
    written = writer.era_constants()
    report("constants")
    for month in recipe.period.months:
        written += writer.month(month)
        report(month)
    return written
