"""The modalities the platform owns, read from the lake for each tile: ERA t2m statistics and MODIS LST.

* ``era5`` (per tile, MMEarth's image-level form): mean, min and max of the ERA store's hourly t2m
  over the tile's month, at the ERA cell nearest the tile's centre.
* ``modis_lst`` (per pixel): the mean over the month's MODIS Aqua-day files of the LST at each tile
  pixel (the MODIS pixel holding the tile pixel's centre), NaN where no day saw it.

Both are read per month for every tile at once (one pass over the month's hours and files), not
per tile. When the lake has no ingested ERA month with MODIS files, :func:`ensure_platform` writes a
small platform lake (ERA GRIB and MODIS GeoTIFFs from the synthetic Earth, then the ERA ingest) under
``tiles/platform/`` and the use case reads that one instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
import zarr

from ml4l.config import recipe_from_dict
from ml4l.era_store import complete_months, create_timevar_store, ingest_month, store_period
from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.nearest import nearest
from ml4l.readers.modis import hours_after_midnight
from ml4l.readers.modis.folder import ModisFolder, read_day, scan_folder
from ml4l.synthetic import SENSOR_NOISE_K, SyntheticEarth
from ml4l.types import Month
from ml4l.usecases.lst.sample import SampleWriter, hours_since_epoch
from ml4l.usecases.tiles.layout import platform_lake
from ml4l.usecases.tiles.recipe import PlatformSpec

ERA_BANDS = ("t2m_mean", "t2m_min", "t2m_max")
MODIS_BANDS = ("lst",)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TileGrid:
    """Pixel-centre coordinates of tiles: ``lat[t, i]`` of row ``i``, ``lon[t, j]`` of column ``j``."""

    lat: F64
    lon: F64
    months: tuple[Month, ...]

    @classmethod
    def of(cls, west: F64, north: F64, size_deg: float, pixels: int, months: list[Month]) -> TileGrid:
        step = size_deg / pixels
        centres = (np.arange(pixels) + 0.5) * step
        return cls(np.asarray(north)[:, None] - centres, np.asarray(west)[:, None] + centres, tuple(months))

    def __len__(self) -> int:
        return self.lat.shape[0]


def modis_days(lake: Lake, month: Month, folder: ModisFolder | None = None) -> list[str]:
    """The days (``YYYY-MM-DD``) of ``month`` with MODIS in the lake."""
    folder = folder or scan_folder(lake)
    first = pd.Timestamp(f"{month}-01")
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range(first, periods=first.days_in_month, freq="D")]
    return [day for day in days if folder.holds(day)]


def available_months(lake: Lake) -> list[Month]:
    """Months with a completely ingested ERA month and at least one MODIS file."""
    if not lake.fs.exists(lake.era_timevar):
        return []
    folder = scan_folder(lake)
    return [m for m in complete_months(lake) if modis_days(lake, m, folder)]


def ensure_platform(lake: Lake, spec: PlatformSpec) -> Lake:
    """The lake to read ERA and MODIS from: ``lake`` if it has them, else the small platform lake, written if needed."""
    if available_months(lake):
        return lake
    small = platform_lake(lake)
    with lake.lock("tiles-platform"):
        if available_months(small):
            return small
        recipe = recipe_from_dict(
            {
                "name": "tiles-platform",
                "grid": spec.grid,
                "period": {"start": spec.start, "end": spec.end, "days": spec.days},
                "sample": {"modis_resolution": spec.modis_resolution, "seed": spec.seed, "modis_formats": ["tif"]},
            },
            source="tiles recipe, platform section",
        )
        writer = SampleWriter(recipe, small)
        create_timevar_store(small, recipe.grid, recipe.period)
        for month in recipe.period.months:
            writer.month(month)
            ingest_month(small, month)
    return small


def era_statistics(lake: Lake, lat: F64, lon: F64, months: list[Month]) -> F32:
    """``(tiles, 3)`` mean, min and max of hourly t2m over each tile's month at the ERA cell nearest its centre."""

    era_grid, times = store_period(lake.era_timevar)
    cells, _ = nearest(era_grid, np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64), engine="balltree")
    out = np.full((len(months), len(ERA_BANDS)), np.nan, dtype=np.float32)
    month_of_hour = times.strftime("%Y-%m")
    t2m = zarr.open_array(f"{lake.era_timevar}/t2m", mode="r")
    for month in sorted(set(months)):
        rows = np.flatnonzero(np.asarray(months) == month)
        hours = np.flatnonzero(month_of_hour == month)
        if hours.size == 0:
            raise InputError(lake.era_timevar, f"no ERA hours of {month} for {rows.size} tiles")
        # a month's hours are contiguous in the store
        values = np.asarray(t2m[hours[0] : hours[-1] + 1], dtype=np.float64)[:, cells[rows]]
        out[rows] = np.stack([np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)], axis=1)
    return out


@dataclass(frozen=True)
class ModisComposite:
    """Per tile pixel, the month's mean MODIS LST (``observed``) and, when asked, the noise-free truth at the same looks."""

    observed: F32
    noise_free: F32 | None


def modis_composite(lake: Lake, tiles: TileGrid, truth: SyntheticEarth | None = None) -> ModisComposite:
    """Mean LST over each tile's month's MODIS days at every tile pixel, ``(tiles, 1, pixels, pixels)``.

    A tile pixel takes the MODIS pixel holding its centre (MODIS on a regular lat-lon grid, the seed's
    ``aquaDay`` files). With ``truth``, also the synthetic Earth's LST without sensor noise at the same
    MODIS pixels and overpass times, averaged the same way (the oracle's target); it raises
    :class:`InputError` if the lake's MODIS does not come from that Earth (observed minus truth far
    beyond the sensor noise).
    """
    n, p = len(tiles), tiles.lat.shape[1]
    total, count = np.zeros((n, p, p)), np.zeros((n, p, p))
    truth_total = np.zeros((n, p, p))
    residual_sq, residual_n = 0.0, 0
    folder = scan_folder(lake)
    for month in sorted(set(tiles.months)):
        rows = np.flatnonzero(np.asarray(tiles.months) == month)
        for day in modis_days(lake, month, folder):
            found = read_day(lake, day, max_lst_error_k=None, folder=folder)
            if found is None:
                raise InputError(lake.modis_folder, f"the MODIS file of {day} went away while it was read")
            lookup = _RegularLookup(found.data)
            index = lookup.index(tiles.lat[rows][:, :, None], tiles.lon[rows][:, None, :])
            seen = index >= 0
            lst = np.where(seen, lookup.lst[index], np.nan)
            total[rows] += np.where(seen, lst, 0.0)
            count[rows] += seen
            if truth is not None and seen.any():
                picked = index[seen]
                utc = hours_since_epoch(pd.Timestamp(day))[0] + lookup.hours[picked]
                clean = truth.lst(lookup.lat[picked], lookup.lon[picked], utc, pd.Timestamp(day).month, rng=None)
                block = np.zeros(seen.shape)
                block[seen] = clean
                truth_total[rows] += block
                residual_sq += float(np.sum((lst[seen] - clean) ** 2))
                residual_n += int(seen.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (total / count)[:, None].astype(np.float32)
        noise_free = (truth_total / count)[:, None].astype(np.float32) if truth is not None else None
    if truth is not None and residual_n:
        rms = float(np.sqrt(residual_sq / residual_n))
        if rms > 3 * SENSOR_NOISE_K:
            raise InputError(
                lake.modis_folder,
                f"MODIS differs from the synthetic Earth of seed {truth.seed} by {rms:.2f} K rms "
                f"(its sensor noise is {SENSOR_NOISE_K} K): not that Earth's data, so there is no noise-free truth",
            )
    return ModisComposite(observed, noise_free)


class _RegularLookup:
    """The observed pixels of a MODIS day on its regular lat-lon grid: which pixel holds a point."""

    def __init__(self, day: xr.Dataset) -> None:
        self.lat = day["latitude"].to_numpy()
        self.lon = day["longitude"].to_numpy()
        self.lst = day["lst"].to_numpy().astype(np.float64)
        self.hours = hours_after_midnight(day)
        source = str(day.attrs.get("source", "MODIS day"))
        steps = np.diff(np.unique(self.lat))
        if steps.size == 0:
            raise InputError(source, "fewer than two rows of observed pixels: cannot tell the grid")
        self.step = float(steps.min())
        self.lat0, self.lon0 = float(self.lat.max()), float(self.lon.min())
        row = np.rint((self.lat0 - self.lat) / self.step)
        col = np.rint((self.lon - self.lon0) / self.step)
        off_grid = np.abs(self.lat0 - row * self.step - self.lat) + np.abs(self.lon0 + col * self.step - self.lon)
        if off_grid.max() > 1e-6 * self.step + 1e-9:
            raise InputError(source, "pixels are not on a regular lat-lon grid (the tiles use case reads the seed's aquaDay form)")
        self.columns = round(360.0 / self.step)
        self.grid = np.full((int(row.max()) + 1, self.columns), -1, dtype=np.int64)
        self.grid[row.astype(np.int64), col.astype(np.int64) % self.columns] = np.arange(self.lat.size)

    def index(self, lat: F64, lon: F64) -> npt.NDArray[np.int64]:
        """Index of the observed pixel holding each point; -1 where that pixel was not observed."""
        row = np.rint((self.lat0 - lat) / self.step).astype(np.int64)
        col = np.rint((lon - self.lon0) / self.step).astype(np.int64) % self.columns
        inside = (row >= 0) & (row < self.grid.shape[0])
        row_b, col_b = np.broadcast_arrays(row, col)
        inside_b = np.broadcast_to(inside, row_b.shape)
        out = np.full(row_b.shape, -1, dtype=np.int64)
        out[inside_b] = self.grid[row_b[inside_b], col_b[inside_b]]
        return out
