"""Data cubes in the Earth System Data Cube's form: paths, the land mask, reading, checking, building from the lake.

A cube is a Zarr store with dims ``(time, lat, lon)``: latitude descending, longitude ascending, a
regular 1/12-degree grid, 8-day steps restarting on 1 January, and the ESDC's names and units:

* ``land_surface_temperature`` (K), NaN where not observed;
* ``air_temperature_2m`` (°C, as the ESDC stores it);
* the static features ``elevation`` (m) and ``land_cover`` (class, see :data:`LAND_COVER`) on ``(lat, lon)``.

Every gap-filling path of the lake is built here, from :meth:`ml4l.lake.Lake.path`.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from ml4l.errors import InputError
from ml4l.lake import Lake

LST = "land_surface_temperature"
T2M = "air_temperature_2m"
ELEVATION = "elevation"
LAND_COVER_VAR = "land_cover"
LAND_COVER = ("forest", "grassland", "cropland", "bare")
"""Land-cover classes 0..3 of ``land_cover``."""
UNITS = {LST: "K", T2M: "°C", ELEVATION: "m"}
CELSIUS_SPELLINGS = ("°C", "degC", "deg_C", "celsius", "C")
RESOLUTION = 1 / 12
STEP_DAYS = 8
DATASET = "gapfill_cube"
"""The quality suite (``expectations/gapfill_cube.yaml``) and quarantine dataset of cubes."""


# ---- paths ----


def cube_path(lake: Lake, name: str) -> str:
    """``gapfill/cubes/<name>.zarr``."""
    return lake.usecase("gapfill", "cubes", f"{name}.zarr")


def truth_path(lake: Lake, name: str) -> str:
    """``gapfill/cubes/<name>.truth.zarr``: the noise-free LST of a generated cube, for the oracle only."""
    return lake.usecase("gapfill", "cubes", f"{name}.truth.zarr")


def land_mask_path(lake: Lake, key: str) -> str:
    """``gapfill/landmask/<key>.npy``: the land mask of one grid, cached."""
    return lake.usecase("gapfill", "landmask", f"{key}.npy")


def model_dir(lake: Lake, model: str) -> str:
    """``gapfill/<model>/``: the trained model and its statistics."""
    return lake.usecase("gapfill", model, "model")


def filled_path(lake: Lake, model: str) -> str:
    """``gapfill/<model>/lst_filled.zarr``."""
    return lake.usecase("gapfill", model, "lst_filled.zarr")


# ---- grid and land mask ----


def grid_coords(north: float, west: float, rows: int, cols: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Cell-centre latitudes (descending) and longitudes (ascending) of a 1/12-degree region."""
    lat = north - RESOLUTION * (np.arange(rows, dtype=np.float64) + 0.5)
    lon = west + RESOLUTION * (np.arange(cols, dtype=np.float64) + 0.5)
    return lat, lon


def eight_day_steps(start: pd.Timestamp, years: int) -> pd.DatetimeIndex:
    """The ESDC's 8-day steps: 46 a year, from 1 January (the last one of a year is shorter)."""
    first = pd.Timestamp(start.year, 1, 1)
    return pd.DatetimeIndex(
        [first.replace(year=first.year + y) + pd.Timedelta(days=STEP_DAYS * k) for y in range(years) for k in range(46)]
    )


def land_mask(lake: Lake, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Land cells of the grid: at least half of a 10 x 10 sub-sample of the cell on land (``global-land-mask``,
    GLOBE at 1 km). Cached in the lake per grid, since loading the global mask takes seconds and ~1 GB."""
    key = hashlib.sha256(np.concatenate([lat, lon]).round(6).tobytes()).hexdigest()[:16]
    path = land_mask_path(lake, key)
    if lake.fs.exists(path):
        with lake.fs.open(path, "rb") as source:
            return np.load(io.BytesIO(source.read()))
    from global_land_mask import globe

    offsets = (np.arange(10) + 0.5) / 10 - 0.5
    sub_lat = (lat[:, None] + offsets[None, :] * RESOLUTION).ravel()
    sub_lon = (lon[:, None] + offsets[None, :] * RESOLUTION).ravel()
    grid_lon, grid_lat = np.meshgrid(((sub_lon + 180) % 360) - 180, np.clip(sub_lat, -90, 90))
    land = globe.is_land(grid_lat, grid_lon).reshape(lat.size, 10, lon.size, 10).mean(axis=(1, 3)) >= 0.5
    lake.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, land)
    staging = f"{path}.tmp-{uuid.uuid4().hex[:8]}"  # written aside, then renamed: never a torn cache entry
    with lake.fs.open(staging, "wb") as out:
        out.write(buffer.getvalue())
    lake.fs.mv(staging, path)
    return land


# ---- reading and checking ----


@dataclass(frozen=True)
class Cube:
    """A cube in memory: ``lst`` (K) and ``t2m`` (°C) as ``(time, lat, lon)`` float32, statics, land mask."""

    path: str
    time: pd.DatetimeIndex
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    lst: npt.NDArray[np.float32]
    t2m: npt.NDArray[np.float32]
    elevation: npt.NDArray[np.float32]
    land_cover: npt.NDArray[np.int8]
    land: npt.NDArray[np.bool_]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.lst.shape  # type: ignore[return-value]

    @property
    def observed(self) -> npt.NDArray[np.bool_]:
        """Land cells with an LST value."""
        return np.isfinite(self.lst) & self.land[None]


def open_cube(path: str) -> xr.Dataset:
    """The cube's dataset, lazily; an :class:`InputError` unless it is a readable Zarr store with the ESDC variables."""
    try:
        ds = xr.open_zarr(path, consolidated=False)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(path, f"not a readable Zarr cube: {exc}") from exc
    missing = [v for v in (LST, T2M, ELEVATION, LAND_COVER_VAR) if v not in ds.variables]
    if missing:
        raise InputError(path, f"missing variable(s) {', '.join(missing)}")
    for name in (LST, T2M):
        if set(ds[name].dims) != {"time", "lat", "lon"}:
            raise InputError(path, f"{name} has dims {ds[name].dims}, expected (time, lat, lon)")
    return ds


def cube_table(lake: Lake, path: str) -> pd.DataFrame:
    """One row per step for the ``gapfill_cube`` suite: dims, units, grid order and spacing, value ranges over
    land, the share of land missing, and the land share of the grid (0 when it misses the land mask)."""
    ds = open_cube(path)
    lat = ds["lat"].values.astype(np.float64)
    lon = ds["lon"].values.astype(np.float64)
    north_first = np.argsort(-lat, kind="stable")
    land = np.empty((lat.size, lon.size), dtype=bool)
    land[north_first] = land_mask(lake, lat[north_first], lon)  # the mask in the cube's own row order
    lst = ds[LST].transpose("time", "lat", "lon").values
    t2m = ds[T2M].transpose("time", "lat", "lon").values
    lst_land = np.where(land[None], lst, np.nan)
    t2m_land = np.where(land[None], t2m, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step cloudy over all land has no LST range
        return pd.DataFrame(
            {
                "time": pd.DatetimeIndex(ds["time"].values),
                "dims": ",".join(map(str, ds[LST].dims)),
                "lst_units": str(ds[LST].attrs.get("units", "")),
                "t2m_units": str(ds[T2M].attrs.get("units", "")),
                "lat_descending": bool(lat.size > 1 and np.all(np.diff(lat) < 0)),
                "lon_ascending": bool(lon.size > 1 and np.all(np.diff(lon) > 0)),
                "lat_spacing": float(np.abs(np.diff(lat)).max()) if lat.size > 1 else np.nan,
                "lon_spacing": float(np.abs(np.diff(lon)).max()) if lon.size > 1 else np.nan,
                "land_share": float(land.mean()),
                "lst_min": np.nanmin(lst_land, axis=(1, 2)),
                "lst_max": np.nanmax(lst_land, axis=(1, 2)),
                "t2m_min": np.nanmin(t2m_land, axis=(1, 2)),
                "t2m_max": np.nanmax(t2m_land, axis=(1, 2)),
                "missing_share": (np.isnan(lst) & land[None]).sum(axis=(1, 2)) / max(int(land.sum()), 1),
            }
        )


def read_cube(lake: Lake, path: str) -> Cube:
    """The whole cube in memory, after the suite passed (:func:`ml4l.quality.validate` on :func:`cube_table`)."""
    ds = open_cube(path)
    lat = ds["lat"].values.astype(np.float64)
    lon = ds["lon"].values.astype(np.float64)
    if lat.size > 1 and lat[0] < lat[-1]:
        raise InputError(path, "latitude must descend (north to south), as in the ESDC")
    return Cube(
        path=path,
        time=pd.DatetimeIndex(ds["time"].values),
        lat=lat,
        lon=lon,
        lst=ds[LST].transpose("time", "lat", "lon").values.astype(np.float32),
        t2m=ds[T2M].transpose("time", "lat", "lon").values.astype(np.float32),
        elevation=ds[ELEVATION].values.astype(np.float32),
        land_cover=ds[LAND_COVER_VAR].values.astype(np.int8),
        land=land_mask(lake, lat, lon),
    )


def read_truth(lake: Lake, name: str) -> npt.NDArray[np.float32] | None:
    """The noise-free LST (K) of a generated cube; ``None`` for a cube without one (built from the lake)."""
    path = truth_path(lake, name)
    if not lake.fs.exists(path):
        return None
    return xr.open_zarr(path, consolidated=False)[LST].values.astype(np.float32)


def cube_attrs(kind: str, recipe_json: str) -> dict[str, str]:
    """Attributes every gap-filling product carries: its kind and the recipe that built it."""
    return {"ml4l_kind": kind, "ml4l_recipe": recipe_json, "Conventions": "CF-1.8"}


def write_cube(lake: Lake, target: str, ds: xr.Dataset, time_chunk: int) -> str:
    """Write ``ds`` whole at ``target`` (hidden, then swapped in), chunked ``time_chunk`` steps by the full grid."""
    encoding = {
        name: {"chunks": (time_chunk, *ds[name].shape[1:]) if ds[name].dims[0] == "time" else ds[name].shape} for name in ds.data_vars
    }
    with lake.replace_whole(target) as staging:
        ds.to_zarr(staging, mode="w-", zarr_format=3, consolidated=False, encoding=encoding)
    return target


# ---- a cube from the lake ----


def _regrid_pixels(
    lst: npt.NDArray[np.float32],
    pixel_lat: npt.NDArray[np.float64],
    pixel_lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Observed MODIS pixels on the 1/12-degree cells: the mean of the pixels whose centres fall in a cell (MODIS
    at 1/30 degree); a cell with none takes the nearest pixel within half the pixel spacing (coarser sources)."""
    from scipy.spatial import cKDTree

    out = np.full((lat.size, lon.size), np.nan)
    if lst.size == 0:
        return out
    north, west = lat[0] + RESOLUTION / 2, lon[0] - RESOLUTION / 2
    rows = np.floor((north - pixel_lat) / RESOLUTION).astype(np.int64)
    cols = np.floor(((pixel_lon - west) % 360) / RESOLUTION).astype(np.int64)
    inside = (rows >= 0) & (rows < lat.size) & (cols < lon.size)
    cell = rows[inside] * lon.size + cols[inside]
    count = np.bincount(cell, minlength=out.size)
    total = np.bincount(cell, lst[inside].astype(np.float64), out.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        out.ravel()[:] = np.where(count > 0, total / count, np.nan)
    spacing = np.diff(np.unique(np.round(pixel_lat, 6)))
    half = float(np.median(spacing)) / 2 if spacing.size else RESOLUTION / 2
    empty = np.isnan(out)
    if half > RESOLUTION / 2 and empty.any():
        grid_lat, grid_lon = np.meshgrid(lat, lon, indexing="ij")

        def wrapped(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return ((x + 180) % 360) - 180

        tree = cKDTree(np.column_stack([pixel_lat, wrapped(pixel_lon)]))
        distance, nearest = tree.query(
            np.column_stack([grid_lat[empty], wrapped(grid_lon[empty])]), p=np.inf, distance_upper_bound=half * 1.0001
        )
        found = np.isfinite(distance)
        values = out[empty]
        values[found] = lst[nearest[found]]
        out[empty] = values
    return out


def build_from_lake(lake: Lake, north: float, west: float, rows: int, cols: int, recipe_json: str, name: str, time_chunk: int) -> str:
    """A cube from the lake's own inputs: MODIS LST (K, the pixels that pass the readers' QC filter) and ERA T2m
    (K -> °C, nearest ERA cell), on the 1/12-degree region, averaged over the ESDC's 8-day steps that the ERA store
    covers (LST: the mean of the days observed).

    Static features come from ERA's constants at the nearest cell: elevation ``z_v20 / g``, and land cover from
    the vegetation cover (forest: high cover >= 0.5; grassland: low cover >= 0.5; bare: both < 0.1; else cropland).
    """
    from ml4l.era_store import store_period
    from ml4l.nearest import nearest
    from ml4l.readers.modis.folder import read_day, scan_folder

    era, hours = store_period(lake.era_timevar)
    lat, lon = grid_coords(north, west, rows, cols)
    grid_lat, grid_lon = np.meshgrid(lat, lon, indexing="ij")
    nearest_cell, _ = nearest(era, grid_lat.ravel(), grid_lon.ravel() % 360)
    t2m_hourly = xr.open_zarr(lake.era_timevar, consolidated=True)["t2m"]
    folder = scan_folder(lake)
    steps = eight_day_steps(hours[0], hours[-1].year - hours[0].year + 1)
    ends = [min(s + pd.Timedelta(days=STEP_DAYS), pd.Timestamp(s.year + 1, 1, 1)) for s in steps]
    kept, lst_steps, t2m_steps = [], [], []
    for start, end in zip(steps, ends, strict=True):
        in_step = np.flatnonzero((hours >= start) & (hours < end))
        if in_step.size == 0:
            continue
        t2m = t2m_hourly.isel(time=in_step).values[:, nearest_cell].mean(axis=0) - 273.15
        days = pd.DatetimeIndex(np.unique(hours[in_step].normalize()))
        daily = []
        for day in days:
            found = read_day(lake, f"{day:%Y-%m-%d}", folder=folder)
            if found is not None:
                pixels = found.data
                daily.append(
                    _regrid_pixels(
                        pixels["lst"].to_numpy(),
                        pixels["latitude"].to_numpy(),
                        pixels["longitude"].to_numpy(),
                        lat,
                        lon,
                    )
                )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # cells cloudy on every day of the step
            lst = np.nanmean(np.stack(daily), axis=0) if daily else np.full((rows, cols), np.nan)
        kept.append(start)
        lst_steps.append(lst)
        t2m_steps.append(t2m.reshape(rows, cols))
    if not kept:
        raise InputError(lake.era_timevar, "no ERA hours: ingest months before building a cube from the lake")
    constants = xr.open_zarr(lake.era_constants, consolidated=True)
    elevation = (constants["z_v20"].values[nearest_cell] / 9.80665).reshape(rows, cols)
    high, low = (constants[f"{v}_v20"].values[nearest_cell].reshape(rows, cols) for v in ("cvh", "cvl"))
    cover = np.select([high >= 0.5, low >= 0.5, (high < 0.1) & (low < 0.1)], [0, 1, 3], default=2).astype(np.int8)
    land = land_mask(lake, lat, lon)
    coords = {
        "time": pd.DatetimeIndex(kept),
        "lat": ("lat", lat, {"units": "degrees_north"}),
        "lon": ("lon", lon, {"units": "degrees_east"}),
    }
    ds = xr.Dataset(
        {
            LST: (
                ("time", "lat", "lon"),
                np.where(land[None], np.stack(lst_steps), np.nan).astype(np.float32),
                {"units": UNITS[LST], "long_name": "Land surface temperature (MODIS Aqua day, 8-day mean)"},
            ),
            T2M: (
                ("time", "lat", "lon"),
                np.stack(t2m_steps).astype(np.float32),
                {"units": UNITS[T2M], "long_name": "Air temperature at 2 m (ERA, 8-day mean)"},
            ),
            ELEVATION: (
                ("lat", "lon"),
                elevation.astype(np.float32),
                {"units": UNITS[ELEVATION], "long_name": "Elevation (ERA z / g)"},
            ),
            LAND_COVER_VAR: (
                ("lat", "lon"),
                cover,
                {
                    "long_name": "Land cover class",
                    "flag_values": list(range(len(LAND_COVER))),
                    "flag_meanings": " ".join(LAND_COVER),
                },
            ),
        },
        coords=coords,
        attrs={**cube_attrs("gapfill_lake_cube", recipe_json), "era_grid": era.name},
    )
    return write_cube(lake, cube_path(lake, name), ds, time_chunk)
