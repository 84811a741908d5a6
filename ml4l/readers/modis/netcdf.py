"""MODIS LST as CF NetCDF (netCDF-4/HDF5 or classic), one or several days on a lat-lon grid.

Two forms: AppEEARS (``LST_Day_1km(time, lat, lon)`` with ``QC_Day``, any CF calendar,
``julian`` included) and the project's sample (``LST_Day(lat, lon)`` and ``Day_view_time``,
its day in the ``date`` attribute). Times are decoded with cftime in the file's own
calendar and the calendar's date is the day. Scale and fill come from the variables'
attributes, else the product's (0.02 K with fill 0; 0.1 h with fill 255).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ml4l.errors import InputError
from ml4l.readers.modis.day import (
    LST_FILL,
    LST_SCALE,
    NO_QC,
    VIEW_TIME_FILL,
    VIEW_TIME_SCALE,
    FileFacts,
    Layers,
    check_dates,
    day_dataset,
    platform_of,
)

MAGICS = (b"CDF\x01", b"CDF\x02", b"\x89HDF\r\n\x1a\n")
_PRODUCT = re.compile(r"(M[OY]D11A1)", re.I)
_QC_NOT_PRODUCED = 0b11  # a QC fill in a file that has QC: the pixel has no known quality


def _variable(ds: xr.Dataset, *names: str) -> str | None:
    return next((n for n in names if n in ds.variables), None)


def _decoded(var: xr.DataArray, default_scale: float, default_fills: tuple[int, ...], dtype: type = np.float32) -> tuple[np.ndarray, float]:
    """Values scaled by the ``scale_factor`` attribute (else ``default_scale`` for integers), fills as NaN."""
    raw = var.to_numpy()
    attrs = {**var.encoding, **var.attrs}
    values: np.ndarray
    if raw.dtype.kind == "f" and "scale_factor" not in attrs:
        values, scale = raw.astype(dtype), 1.0
    else:
        scale = float(np.ravel(attrs.get("scale_factor", default_scale))[0])
        values = (raw.astype(np.float64) * scale + float(np.ravel(attrs.get("add_offset", 0.0))[0])).astype(dtype)
    fills = [np.ravel(attrs["_FillValue"])[0]] if "_FillValue" in attrs else []
    fills += list(default_fills)
    for fill in fills:
        values[raw == fill] = np.nan
    values[~np.isfinite(raw)] = np.nan
    return values, scale


def _days(ds: xr.Dataset, source: str) -> list[dt.date]:
    """The file's days: its time coordinate in its own calendar, else its ``date`` attribute."""
    import cftime

    if "time" in ds.variables:
        time = ds["time"]
        units, calendar = time.attrs.get("units"), time.attrs.get("calendar", "standard")
        if units is None:
            raise InputError(source, "time has no units")
        try:
            stamps = cftime.num2date(np.atleast_1d(time.to_numpy()), units, calendar=calendar)
        except (ValueError, TypeError) as exc:
            raise InputError(source, f"cannot decode time ({units!r}, calendar {calendar!r}): {exc}") from exc
        return [dt.date(s.year, s.month, s.day) for s in stamps]
    if "date" in ds.attrs:
        return [dt.date.fromisoformat(str(ds.attrs["date"]))]
    return []


def read(path: str, source: str, max_error_k: int | None, night: bool) -> list[xr.Dataset]:
    """One ``read_modis`` dataset per day of the file, in the file's time order."""
    half = "Night" if night else "Day"
    try:
        ds = xr.open_dataset(path, engine="h5netcdf", mask_and_scale=False, decode_times=False)
    except (OSError, ValueError) as exc:
        try:  # netCDF classic has no HDF5 container
            ds = xr.open_dataset(path, engine="scipy", mask_and_scale=False, decode_times=False)
        except (OSError, ValueError):
            raise InputError(source, f"cannot read NetCDF: {exc}") from exc
    with ds:
        lst_name = _variable(ds, f"LST_{half}_1km", f"LST_{half}")
        view_name = _variable(ds, f"{half}_view_time")
        qc_name = _variable(ds, f"QC_{half}")
        missing = [n for n, found in ((f"LST_{half}_1km", lst_name), (f"{half}_view_time", view_name or qc_name)) if not found]
        if missing:
            raise InputError(source, f"missing variable(s) {', '.join(missing)}")
        assert lst_name is not None
        lst_var = ds[lst_name]
        spatial = lst_var.dims[-2:]
        if spatial != ("lat", "lon") or lst_var.ndim not in (2, 3):
            raise InputError(source, f"{lst_name} has dimensions {lst_var.dims}, expected ([time,] lat, lon)")
        lat, lon = ds["lat"].to_numpy().astype(np.float64), ds["lon"].to_numpy().astype(np.float64)
        if lat.size < 2 or lon.size < 2 or not (_monotonic(lat) and _monotonic(lon)):
            raise InputError(source, "lat and lon must be monotonic coordinates of a lat-lon grid")
        days, date_source = check_dates(source, _days(ds, source), source)
        steps = lst_var.shape[0] if lst_var.ndim == 3 else 1
        if len(days) != steps:
            raise InputError(source, f"{len(days)} time(s) for {steps} {lst_name} field(s)")
        product = _product(ds.attrs, path, source)
        lst, scale = _decoded(lst_var, LST_SCALE, (LST_FILL,) if lst_var.dtype.kind in "iu" else ())
        view = _decoded(ds[view_name], VIEW_TIME_SCALE, _view_fills(ds[view_name]), np.float64)[0] if view_name else None
        qc = _qc(ds[qc_name]) if qc_name else np.full(lst.shape, NO_QC, dtype=np.int16)
    try:
        platform = platform_of(product)
    except ValueError as exc:
        raise InputError(source, str(exc)) from exc
    facts = FileFacts(source, product, platform, lst_name, "netcdf", _bounds(lat, lon), scale, date_source)
    out = []
    for step, day in enumerate(days):
        lst_day, qc_day, view_day = (a if a is None or a.ndim == 2 else a[step] for a in (lst, qc, view))
        layers = Layers(lst_day, qc_day, view_day, lambda rows, cols: (lat[rows], lon[cols]))  # type: ignore[arg-type]
        out.append(day_dataset(facts, day, layers, max_error_k))
    return out


def _bounds(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float, float, float]:
    return float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max())


def _monotonic(values: np.ndarray) -> bool:
    steps = np.diff(values)
    return bool(np.all(steps > 0) or np.all(steps < 0))


def _view_fills(var: xr.DataArray) -> tuple[int, ...]:
    """The product's view-time fill, 255, for its own 8-bit encoding (stored as uint8 or declared so)."""
    return (VIEW_TIME_FILL,) if var.dtype == np.uint8 or var.attrs.get("Number_Type") == "uint8" else ()


def _qc(var: xr.DataArray) -> np.ndarray:
    raw = var.to_numpy()
    qc = raw.astype(np.int16)
    if "_FillValue" in var.attrs or "_FillValue" in var.encoding:
        fill: Any = var.attrs.get("_FillValue", var.encoding.get("_FillValue"))
        qc[raw == np.ravel(fill)[0]] = _QC_NOT_PRODUCED
    return qc


def _product(attrs: dict[str, Any], path: str, source: str) -> str:
    for text in (str(attrs.get("title", "")), Path(path).name):
        found = _PRODUCT.search(text)
        if found:
            return found[1].upper()
    raise InputError(source, "cannot tell the product (MOD11A1 or MYD11A1) from its title or name")
