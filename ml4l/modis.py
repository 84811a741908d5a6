"""MODIS Aqua-day LST readers: GeoTIFF (GDAL via rasterio) and CF NetCDF.

Both return a :class:`ModisImage`: LST in K and the local solar view hour as
float32 with fills turned into NaN, and the latitude/longitude of the pixel
centres as found in the file. A file whose grid is not a north-up regular
lat-lon grid, or whose bands are missing, is rejected with an
:class:`~ml4l.errors.InputError` naming it.

The UTC time of an observation is its day plus the local solar view hour minus
``longitude / 15`` hours: the product's day is the local solar day.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.types import FloatArray, Float32Array

LST_BAND = "LST_Day"
VIEW_TIME_BAND = "Day_view_time"
EXTENSIONS = ("tif", "nc")


@dataclass(frozen=True)
class ModisImage:
    """One MODIS day as read from a file.

    Attributes
    ----------
    path : str
        The file it came from.
    lst : ndarray
        ``(rows, columns)`` float32 LST in K, NaN where not observed.
    view_time : ndarray
        ``(rows, columns)`` float32 local solar hour of the observation, NaN where not observed.
    lat, lon : ndarray
        Pixel-centre latitude of each row and longitude of each column, degrees.
    """

    path: str
    lst: Float32Array
    view_time: Float32Array
    lat: FloatArray
    lon: FloatArray

    @property
    def resolution(self) -> tuple[float, float]:
        """(row spacing, column spacing) in degrees."""
        return float(abs(self.lat[1] - self.lat[0])), float(abs(self.lon[1] - self.lon[0]))

    def observed(self) -> tuple[FloatArray, FloatArray, Float32Array, Float32Array]:
        """Latitude, longitude, LST and view hour of every pixel with both LST and view time."""
        seen = ~(np.isnan(self.lst) | np.isnan(self.view_time))
        rows, cols = np.nonzero(seen)
        return self.lat[rows], self.lon[cols], self.lst[seen], self.view_time[seen]


def utc_hours(day: pd.Timestamp, lon: FloatArray, view_time: Float32Array) -> FloatArray:
    """UTC of each observation in hours since ``day`` 00:00: local solar hour minus ``lon / 15``."""
    return view_time.astype(np.float64) - np.asarray(lon, dtype=np.float64) / 15.0


def find_modis(lake: Lake, day: str) -> str | None:
    """The MODIS file of ``day`` (``YYYY-MM-DD``) in the lake, GeoTIFF first; ``None`` if there is none."""
    for extension in EXTENSIONS:
        path = lake.modis(day, extension)
        if lake.fs.exists(path):
            return path
    return None


def read_modis(path: str, local_path: str | None = None) -> ModisImage:
    """Read a MODIS day from a GeoTIFF (``.tif``) or NetCDF (``.nc``) file.

    Parameters
    ----------
    path
        The file's name in the lake, used in errors.
    local_path
        Where its bytes are on the local disk, if not at ``path``.
    """
    local = local_path or path
    suffix = Path(path).suffix.lower()
    if not Path(local).exists():
        raise InputError(path, "MODIS file is missing")
    if suffix in {".tif", ".tiff"}:
        return _read_geotiff(path, local)
    if suffix == ".nc":
        return _read_netcdf(path, local)
    raise InputError(path, f"unknown MODIS file type {suffix!r}: expected .tif or .nc")


def _read_geotiff(path: str, local: str) -> ModisImage:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(local) as src:
            if src.count < 2:
                raise InputError(path, f"expected bands {LST_BAND} and {VIEW_TIME_BAND}, found {src.count} band(s)")
            names = tuple(d or "" for d in src.descriptions)
            bands = {name: k + 1 for k, name in enumerate(names)}
            missing = [b for b in (LST_BAND, VIEW_TIME_BAND) if b not in bands]
            if missing:
                raise InputError(path, f"missing band(s) {', '.join(missing)}; found {names}")
            if src.crs is None or src.crs.to_epsg() != 4326:
                raise InputError(path, f"expected EPSG:4326 lat-lon, found CRS {src.crs}")
            t = src.transform
            if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
                raise InputError(path, f"not a north-up regular lat-lon grid: transform {tuple(t)[:6]}")
            values = []
            for name in (LST_BAND, VIEW_TIME_BAND):
                band = bands[name]
                raw = src.read(band)
                scale, offset = src.scales[band - 1], src.offsets[band - 1]
                decoded = (raw.astype(np.float32) * np.float32(scale) + np.float32(offset)).astype(np.float32)
                if src.nodata is not None:
                    decoded[raw == src.nodata] = np.nan
                values.append(decoded)
            lat = t.f + t.e * (np.arange(src.height) + 0.5)
            lon = t.c + t.a * (np.arange(src.width) + 0.5)
    except RasterioIOError as exc:
        raise InputError(path, f"cannot read GeoTIFF: {exc}") from exc
    return ModisImage(path, values[0], values[1], lat, lon)


def _read_netcdf(path: str, local: str) -> ModisImage:
    import xarray as xr

    try:
        ds = xr.open_dataset(local, engine="h5netcdf", mask_and_scale=True)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read NetCDF: {exc}") from exc
    with ds:
        missing = [v for v in (LST_BAND, VIEW_TIME_BAND) if v not in ds.variables]
        if missing:
            raise InputError(path, f"missing variable(s) {', '.join(missing)}")
        if ds[LST_BAND].dims != ("lat", "lon"):
            raise InputError(path, f"{LST_BAND} has dimensions {ds[LST_BAND].dims}, expected ('lat', 'lon')")
        lat, lon = ds["lat"].values.astype(np.float64), ds["lon"].values.astype(np.float64)
        if lat.size < 2 or lon.size < 2 or not (np.all(np.diff(lat) < 0) and np.all(np.diff(lon) > 0)):
            raise InputError(path, "lat must decrease and lon increase along a regular grid")
        lst = ds[LST_BAND].values.astype(np.float32)
        view = ds[VIEW_TIME_BAND].values.astype(np.float32)
    return ModisImage(path, lst, view, lat, lon)
