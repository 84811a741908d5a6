"""Sample inputs in the real formats and the file layout of seed 000, from :mod:`ml4l.synthetic`.

ERA fields are written as GRIB1 by ecCodes on the recipe's grid, reduced Gaussian
(``N``/``O``) or regular lat-lon as the CDS delivers ERA5 (``grid: LL0.25``, 721 x 1440),
each message zero-padded to a multiple of 120 bytes as MARS and the CDS write them;
MODIS Aqua-day LST as GeoTIFF (GDAL, via rasterio), CF NetCDF and/or NASA's HDF4-EOS
sinusoidal tiles (pyhdf), with the product's own encoding: LST as uint16 scaled by
0.02 K with 0 as fill, view time in local solar hours, the QC byte in the tiles.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml4l.config import Recipe
from ml4l.grids import Grid, grid
from ml4l.lake import Lake
from ml4l.readers.grib import MARS_PADDING, GribWriter, write_fields
from ml4l.readers.modis.hdf4 import SinusoidalGrid
from ml4l.synthetic import SENSOR_NOISE_K, TRUTH_CONSTANTS, SyntheticEarth, TimeInvariant
from ml4l.types import BoolArray, FloatArray, Month
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
        return np.asarray(90.0 - self.resolution * (np.arange(self.shape[0]) + 0.5), dtype=np.float64)

    @property
    def lon(self) -> FloatArray:
        """Longitude of each column's centre."""
        return np.asarray(-180.0 + self.resolution * (np.arange(self.shape[1]) + 0.5), dtype=np.float64)


@dataclass(frozen=True)
class ModisDay:
    """One day of MODIS Aqua-day observations: LST (K) and local solar view hour, NaN where missing."""

    lst: np.ndarray
    view_time: np.ndarray


def _row_block(modis_grid: ModisGrid, first: int) -> tuple[FloatArray, FloatArray]:
    """Latitudes and longitudes of the :data:`_ROW_BLOCK` rows of ``modis_grid`` from row ``first``."""
    lat2, lon2 = np.meshgrid(modis_grid.lat[first : first + _ROW_BLOCK], modis_grid.lon, indexing="ij")
    return lat2, lon2


@dataclass(frozen=True)
class LandFields:
    """The land pixels of some rows and the truth's time-invariant fields at them, in row-major order."""

    land: BoolArray
    fields: TimeInvariant

    def at(self, picked: BoolArray) -> TimeInvariant:
        """The fields at the land pixels ``picked``."""
        fields = self.fields
        return TimeInvariant(
            {name: values[picked] for name, values in fields.v15.items()},
            {name: values[picked] for name, values in fields.v20.items()},
            fields.valley_depth[picked],
        )


class TruthCache:
    """The truth's time-invariant fields (:meth:`~ml4l.synthetic.SyntheticEarth.time_invariant`) on the land
    pixels of the MODIS grid, computed once for a month's days (:func:`build_truth_cache`) instead of every day.

    Memory-mapped ``.npy`` files in ``directory``: ``land`` (``land_sea_mask > 0.5``, rows x columns),
    ``row_start`` (each row's first land pixel, rows + 1 entries) and one float64 file a field
    (``v15-z``, ..., ``valley_depth``), one value a land pixel in row-major order.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.land = self._load("land")
        self.row_start = self._load("row_start")
        self.v15 = {name: self._load(f"v15-{name}") for name in TRUTH_CONSTANTS[15]}
        self.v20 = {name: self._load(f"v20-{name}") for name in TRUTH_CONSTANTS[20]}
        self.valley_depth = self._load("valley_depth")

    def _load(self, name: str) -> np.ndarray:
        return np.load(os.path.join(self.directory, f"{name}.npy"), mmap_mode="r")

    def rows(self, rows: slice) -> LandFields:
        """The land and the fields of ``rows`` (a slice with a start and a stop)."""
        stop = min(rows.stop, self.land.shape[0])
        span = slice(int(self.row_start[rows.start]), int(self.row_start[stop]))
        return LandFields(
            np.asarray(self.land[rows.start : stop]),
            TimeInvariant(
                {name: np.asarray(values[span]) for name, values in self.v15.items()},
                {name: np.asarray(values[span]) for name, values in self.v20.items()},
                np.asarray(self.valley_depth[span]),
            ),
        )


def build_truth_cache(recipe: Recipe, directory: str, pool: Executor) -> TruthCache:
    """Compute :class:`TruthCache` into ``directory``, blocks of rows in ``pool``'s processes: the land first, then the fields."""
    modis_grid = ModisGrid(recipe.sample.modis_resolution)
    rows, cols = modis_grid.shape
    os.makedirs(directory, exist_ok=True)
    firsts = range(0, rows, _ROW_BLOCK)
    _allocate(os.path.join(directory, "land.npy"), np.bool_, (rows, cols))
    for _ in pool.map(_cache_land_rows, [recipe] * len(firsts), [directory] * len(firsts), firsts):
        pass
    land = np.load(os.path.join(directory, "land.npy"), mmap_mode="r")
    row_start = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(land, axis=1), out=row_start[1:])
    np.save(os.path.join(directory, "row_start.npy"), row_start)
    names = [*(f"v15-{n}" for n in TRUTH_CONSTANTS[15]), *(f"v20-{n}" for n in TRUTH_CONSTANTS[20]), "valley_depth"]
    for name in names:
        _allocate(os.path.join(directory, f"{name}.npy"), np.float64, (int(row_start[-1]),))
    for _ in pool.map(_cache_field_rows, [recipe] * len(firsts), [directory] * len(firsts), firsts):
        pass
    return TruthCache(directory)


def _allocate(path: str, dtype: type, shape: tuple[int, ...]) -> None:
    """An ``.npy`` file of ``shape`` that processes fill in place, each its own rows."""
    np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()


def _cache_land_rows(recipe: Recipe, directory: str, first: int) -> None:
    lat2, lon2 = _row_block(ModisGrid(recipe.sample.modis_resolution), first)
    land = np.load(os.path.join(directory, "land.npy"), mmap_mode="r+")
    land[first : first + lat2.shape[0]] = SyntheticEarth(recipe.sample.seed).land_sea_mask(lat2, lon2) > 0.5
    land.flush()


def _cache_field_rows(recipe: Recipe, directory: str, first: int) -> None:
    lat2, lon2 = _row_block(ModisGrid(recipe.sample.modis_resolution), first)
    land = np.load(os.path.join(directory, "land.npy"), mmap_mode="r")[first : first + lat2.shape[0]]
    start = int(np.load(os.path.join(directory, "row_start.npy"))[first])
    fixed = SyntheticEarth(recipe.sample.seed).time_invariant(lat2[land], lon2[land])
    fields = {
        **{f"v15-{n}": v for n, v in fixed.v15.items()},
        **{f"v20-{n}": v for n, v in fixed.v20.items()},
        "valley_depth": fixed.valley_depth,
    }
    for name, values in fields.items():
        target = np.load(os.path.join(directory, f"{name}.npy"), mmap_mode="r+")
        target[start : start + values.size] = values
        target.flush()


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
        with self._staged(targets["sfc"]) as sfc_path, self._staged(targets["skin"]) as skin_path:
            self.era_hours(self.recipe.period.hours_of(month), sfc_path, skin_path)
        return list(targets.values())

    def era_hours(self, hours: pd.DatetimeIndex, sfc_path: str, skin_path: str) -> None:
        """Write the ERA_sfc and ERA_skin messages of ``hours`` to two local GRIB files (self-contained
        messages: the files of consecutive hours, concatenated, are the files of all of them)."""
        v15 = self.earth.constants(self.grid.lat, self.grid.lon, 15)
        bits = self.recipe.sample.bits_per_value
        with GribWriter(sfc_path, self.grid, bits, MARS_PADDING) as sfc, GribWriter(skin_path, self.grid, bits, MARS_PADDING) as skin:
            for time in hours:
                weather = self.earth.weather(self.grid.lat, self.grid.lon, hours_since_epoch(time)[0], v15)
                for group, writer in (("sfc", sfc), ("skin", skin)):
                    for variable in GROUPS[group]:  # type: ignore[index]
                        writer.write(variable, time, weather[variable.name])

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
            write_fields(local, self.grid, fields, self.recipe.sample.bits_per_value, MARS_PADDING)
        return target

    # ---- MODIS ----

    def _observe(self, lat: FloatArray, lon: FloatArray, day: pd.Timestamp, key: list[int], fixed: LandFields | None = None) -> ModisDay:
        """LST and local view hour at points ``(lat, lon)`` of one day; NaN: ocean, outside swath, cloud.

        ``key`` seeds the noise with the recipe's seed and the day; ``fixed``, the land and the truth's
        time-invariant fields at these points (:class:`TruthCache`), saves computing them again.
        """
        day_start = float(hours_since_epoch(day)[0])
        lst = np.full(lat.shape, np.nan, dtype=np.float32)
        view = np.full(lat.shape, np.nan, dtype=np.float32)
        utc, view_hour = self.earth.overpass(lat, lon, day_start)
        land = self.earth.land_sea_mask(lat, lon) > 0.5 if fixed is None else fixed.land
        seen = ~np.isnan(utc) & land
        seen[seen] = ~self.earth.cloudy(lat[seen], lon[seen], utc[seen])
        if seen.any():
            rng = np.random.default_rng([self.recipe.sample.seed, int(day_start), *key])
            at_seen = None if fixed is None else fixed.at(seen[land])
            lst[seen] = self.earth.lst(lat[seen], lon[seen], utc[seen], day.month, rng, at_seen)
            view[seen] = view_hour[seen]
        return ModisDay(lst, view)

    def modis_observations(self, day: pd.Timestamp, cache: TruthCache | None = None) -> ModisDay:
        """LST and view time of one day on the MODIS grid (NaN: ocean, outside swath, cloud); the same
        values with or without ``cache``."""
        lst = np.empty(self.modis_grid.shape, dtype=np.float32)
        view = np.empty(self.modis_grid.shape, dtype=np.float32)
        for first in range(0, self.modis_grid.shape[0], _ROW_BLOCK):
            lat2, lon2 = _row_block(self.modis_grid, first)
            rows = slice(first, first + lat2.shape[0])
            fixed = None if cache is None else cache.rows(rows)
            lst[rows], view[rows] = dataclasses.astuple(self._observe(lat2, lon2, day, [first], fixed))
        return ModisDay(lst, view)

    def modis_tile(self, day: pd.Timestamp, tile: str) -> str:
        """Write one day of one sinusoidal tile (``h18v04``) as NASA's MYD11A1 HDF4-EOS granule."""
        h, v = int(tile[1:3]), int(tile[4:6])
        cells = max(1, round(10.0 / self.recipe.sample.modis_resolution))
        grid = SinusoidalGrid.tile(h, v, cells)
        lat, lon = grid.lat_lon(*np.indices(grid.shape))
        on_earth = ~np.isnan(lon)
        observed = self._observe(lat, np.where(on_earth, lon, 0.0), day, [h, v, cells])
        lst = np.where(on_earth, observed.lst, np.nan)
        target = self.lake.modis_file(modis_tile_name(day, tile))
        qc_rng = np.random.default_rng([self.recipe.sample.seed, h, v, day.dayofyear])
        with self._staged(target) as local:
            write_modis_hdf4(local, ModisDay(lst, observed.view_time), grid, day, qc_rng)
        return target

    def record(self) -> str:
        """Write :attr:`~ml4l.lake.Lake.sample_record`: the synthetic Earth behind the MODIS files, for :mod:`ml4l.usecases.lst.oracle`."""
        target = self.lake.sample_record
        text = json.dumps(
            {"generator": "ml4l.synthetic.SyntheticEarth", "seed": self.recipe.sample.seed, "sensor_noise_k": SENSOR_NOISE_K}, indent=2
        )
        with self._staged(target) as local:
            partial = f"{local}.{uuid.uuid4().hex}.partial"  # days are written in parallel, each replaces it whole
            Path(partial).write_text(text)
            os.replace(partial, local)
        return target

    def modis_day(self, day: pd.Timestamp, cache: TruthCache | None = None) -> list[str]:
        """Write one day of MODIS in every configured format (and the sample record); ``cache``: the month's
        time-invariant fields on the MODIS grid (the same bytes, faster)."""
        self.record()
        global_formats = set(self.recipe.sample.modis_formats) - {"hdf"}
        observed = self.modis_observations(day, cache) if global_formats else ModisDay(np.zeros(0), np.zeros(0))
        written = []
        for extension in self.recipe.sample.modis_formats:
            if extension == "hdf":
                written += [self.modis_tile(day, tile) for tile in self.recipe.sample.modis_tiles]
                continue
            target = self.lake.modis(day.strftime("%Y-%m-%d"), extension)
            with self._staged(target) as local:
                if extension == "tif":
                    write_modis_geotiff(local, observed, self.modis_grid, day)
                elif extension == "nc":
                    write_modis_netcdf(local, observed, self.modis_grid, day)
                else:
                    raise ValueError(f"unknown MODIS format {extension!r}: expected tif, nc or hdf")
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
    encoded: np.ndarray = np.full(values.shape, fill, dtype=dtype)
    ok = ~np.isnan(values)
    encoded[ok] = np.clip(np.round(values[ok] / scale), 1, np.iinfo(dtype).max - (fill == np.iinfo(dtype).max))
    return encoded


def write_modis_geotiff(path: str, day: ModisDay, modis_grid: ModisGrid, date: pd.Timestamp | None = None) -> None:
    """Two-band GeoTIFF (EPSG:4326): LST_Day (uint16, 0.02 K) and Day_view_time (uint16, 0.01 h); 0 is fill.

    ``date``, if given, is written as the ``date`` tag, the file's own record of its day.
    """
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
            if date is not None:
                dst.update_tags(date=date.strftime("%Y-%m-%d"))
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def modis_tile_name(day: pd.Timestamp, tile: str) -> str:
    """NASA's granule name of an Aqua tile, produced (deterministically) two days later."""
    produced = day + pd.Timedelta(days=2)
    return f"MYD11A1.A{day.year}{day.dayofyear:03d}.{tile}.061.{produced.year}{produced.dayofyear:03d}000000.hdf"


_ERROR_CLASS_SHARES = (0.6, 0.2, 0.1, 0.1)
"""Shares of observed sample pixels in the LST error classes <= 1, 2, 3 and > 3 K."""


def write_modis_hdf4(path: str, day: ModisDay, grid: SinusoidalGrid, date: pd.Timestamp, rng: np.random.Generator) -> None:
    """An HDF4-EOS MYD11A1 granule: ``LST_Day_1km``, ``QC_Day``, ``Day_view_time`` and NASA's metadata.

    The QC byte of an observed pixel holds an error class drawn with :data:`_ERROR_CLASS_SHARES`;
    one not observed says "not produced, cloud".
    """
    from pyhdf.SD import SD, SDC

    observed = ~np.isnan(day.lst)
    qc = np.full(grid.shape, 0b10, dtype=np.uint8)
    qc[observed] = rng.choice(4, size=int(observed.sum()), p=_ERROR_CLASS_SHARES).astype(np.uint8) << 6
    south, north, west, east = grid.bounds()
    lst = _encode(day.lst, LST_SCALE, 0, np.uint16)
    view = _encode(np.where(observed, day.view_time, np.nan), VIEW_TIME_SCALE_NC, 255, np.uint8)
    layers: tuple[tuple[str, int, np.ndarray, dict[str, Any], int | None], ...] = (  # name, HDF type, values, attributes, fill
        ("LST_Day_1km", SDC.UINT16, lst, {"scale_factor": LST_SCALE, "units": "K"}, 0),
        ("QC_Day", SDC.UINT8, qc, {}, None),
        ("Day_view_time", SDC.UINT8, view, {"scale_factor": VIEW_TIME_SCALE_NC, "units": "hrs"}, 255),
    )
    partial = path + ".partial"
    try:
        hdf = SD(partial, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
        for name, kind, values, attributes, fill in layers:
            sds = hdf.create(name, kind, grid.shape)
            if fill is not None:
                sds.setfillvalue(fill)
            for key, value in attributes.items():
                setattr(sds, key, value)
            sds[:] = values
            sds.endaccess()
        metadata = {
            "StructMetadata.0": _struct_metadata(grid),
            "CoreMetadata.0": _odl({"SHORTNAME": "MYD11A1", "RANGEBEGINNINGDATE": date.strftime("%Y-%m-%d")}),
            "ArchiveMetadata.0": _odl(
                {
                    "SOUTHBOUNDINGCOORDINATE": south,
                    "NORTHBOUNDINGCOORDINATE": north,
                    "WESTBOUNDINGCOORDINATE": west,
                    "EASTBOUNDINGCOORDINATE": east,
                }
            ),
        }
        for name, text in metadata.items():
            hdf.attr(name).set(SDC.CHAR8, text)
        hdf.end()
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def _struct_metadata(grid: SinusoidalGrid) -> str:
    rows, cols = grid.shape
    lower_right = (grid.x0 + cols * grid.dx, grid.y0 - rows * grid.dy)
    return (
        'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="MODIS_Grid_Daily_1km_LST"\n'
        f"\t\tXDim={cols}\n\t\tYDim={rows}\n"
        f"\t\tUpperLeftPointMtrs=({grid.x0!r},{grid.y0!r})\n\t\tLowerRightMtrs=({lower_right[0]!r},{lower_right[1]!r})\n"
        f"\t\tProjection=GCTP_SNSOID\n\t\tProjParams=({grid.radius:.6f},0,0,0,0,0,0,0,86400,0,0,0,0)\n"
        "\t\tSphereCode=-1\n\t\tGridOrigin=HDFE_GD_UL\n\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nEND\n"
    )


def _odl(values: dict[str, object]) -> str:
    """ECS ODL metadata with one ``OBJECT`` per value, as NASA writes it."""
    lines = ["GROUP = INVENTORYMETADATA"]
    for name, value in values.items():
        shown = f'"{value}"' if isinstance(value, str) else repr(float(value))  # type: ignore[arg-type]
        lines += [f"  OBJECT = {name}", "    NUM_VAL = 1", f"    VALUE = {shown}", f"  END_OBJECT = {name}", ""]
    return "\n".join([*lines, "END_GROUP = INVENTORYMETADATA", "END", ""])


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


# ---- a month on every core: each day in its own process ----


def _era_day_parts(recipe: Recipe, lake_root: str, day: str, directory: str) -> tuple[str, str]:
    stamp = pd.Timestamp(day)
    parts = (os.path.join(directory, f"sfc-{stamp:%Y%m%d}.grib"), os.path.join(directory, f"skin-{stamp:%Y%m%d}.grib"))
    SampleWriter(recipe, Lake(lake_root)).era_hours(pd.date_range(stamp, periods=24, freq="h"), *parts)
    return parts


def _modis_day(recipe: Recipe, lake_root: str, day: str, cache: str | None) -> list[str]:
    return SampleWriter(recipe, Lake(lake_root)).modis_day(pd.Timestamp(day), None if cache is None else TruthCache(cache))


def _era_constants(recipe: Recipe, lake_root: str) -> list[str]:
    return SampleWriter(recipe, Lake(lake_root)).era_constants()


def write_month_in_parallel(
    recipe: Recipe, lake: Lake, month: Month, workers: int | None = None, constants: bool = True, progress: Progress | None = None
) -> list[str]:
    """The files :meth:`SampleWriter.month` writes (and the ERA constants), made day by day in ``workers``
    processes (default: the cores given, :mod:`ml4l.threads`); the same bytes for ERA, the same values for MODIS.

    Each day's ERA hours go to part files, concatenated in order into the month's files
    (written aside, then renamed), so no process holds more than a day. The truth's time-invariant
    fields on the MODIS grid are computed once for the month (:func:`build_truth_cache`), not once a
    day; the MODIS files are byte for byte those of :meth:`SampleWriter.modis_day` without it.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from ml4l.threads import cores_given

    report = progress or (lambda _: None)
    days = [d.strftime("%Y-%m-%d") for d in recipe.period.days_of(month)]
    writer = SampleWriter(recipe, lake)
    written: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="ml4l-era-parts-") as directory,
        ProcessPoolExecutor(max_workers=workers or cores_given(), mp_context=get_context("spawn")) as pool,
    ):
        fixed = pool.submit(_era_constants, recipe, lake.root) if constants else None
        era = [pool.submit(_era_day_parts, recipe, lake.root, day, directory) for day in days]
        cache = None
        if set(recipe.sample.modis_formats) - {"hdf"}:  # global grids: their time-invariant fields once, not once a day
            cache = build_truth_cache(recipe, os.path.join(directory, "truth"), pool).directory
        modis = [pool.submit(_modis_day, recipe, lake.root, day, cache) for day in days]
        if fixed is not None:
            written += fixed.result()
            report("constants")
        parts = [future.result() for future in era]
        for group, target in enumerate((lake.era_sfc(month), lake.era_skin(month))):
            with writer._staged(target) as local:
                partial = local + ".partial"
                try:
                    with open(partial, "wb") as out:
                        for day_parts in parts:
                            with open(day_parts[group], "rb") as source:
                                shutil.copyfileobj(source, out, 16 << 20)
                    os.replace(partial, local)
                finally:
                    Path(partial).unlink(missing_ok=True)
            written.append(target)
        report(f"ERA {month}")
        for day, future in zip(days, modis, strict=True):
            written += future.result()
            report(day)
    return written
