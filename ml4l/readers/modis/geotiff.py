"""MODIS LST as GeoTIFF on a north-up EPSG:4326 grid, read with rasterio.

Three forms:

- AppEEARS: one layer a file (``MYD11A1.061_LST_Day_1km_doy2024228_aid0001.tif``); the QC
  and view-time layers are the files beside it whose names differ only in the layer;
- the project's sample: bands ``LST_Day`` and ``Day_view_time`` in one file;
- the seed's own: a single float32 band already in K, no QC, no view time (the nominal
  overpass is used).

An integer LST layer is scaled by its band scale, else the ``scale_factor`` tag, else the
product's 0.02; a float layer is taken as K. Fill is the band's nodata, else the product's
(0 for LST, 255 for an 8-bit view time).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
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

MAGICS = (b"II*\x00", b"MM\x00*")
_APPEEARS_LST = re.compile(r"_LST_(Day|Night)_1km_")
_PRODUCT = re.compile(r"(M[OY]D11A1)", re.I)
_SEED_PLATFORM = {"aqua": "MYD11A1", "terra": "MOD11A1"}
_QC_NOT_PRODUCED = 0b11  # a QC fill in a file that has QC: the pixel has no known quality


def companion(path: str, layer: str) -> Path | None:
    """The AppEEARS file beside ``path`` that holds ``layer`` of the same request and day, if it exists."""
    found = _APPEEARS_LST.search(Path(path).name)
    if not found:
        return None
    replacement = {"QC": f"_QC_{found[1]}_", "view_time": f"_{found[1]}_view_time_"}[layer]
    sibling = Path(path).with_name(_APPEEARS_LST.sub(replacement, Path(path).name, count=1))
    return sibling if sibling.is_file() else None


def _scale(src: Any, band: int, default: float) -> float:
    """The band's scale, else a ``scale_factor`` tag of the band or the file, else ``default``."""
    if src.scales[band - 1] != 1.0 or src.offsets[band - 1] != 0.0:
        return float(src.scales[band - 1])
    for tags in (src.tags(band), src.tags()):
        if "scale_factor" in tags:
            return float(tags["scale_factor"])
    return default


def _decode(
    src: Any, band: int, default_scale: float, default_fill: int | None, dtype: type = np.float32, window: Any = None
) -> tuple[np.ndarray, float]:
    """Band ``band`` (the rows of ``window``, else all) scaled, with its nodata (else ``default_fill`` for
    integers) and non-finite values as NaN."""
    raw = src.read(band, window=window)
    if raw.dtype.kind == "f":
        values = raw.astype(dtype)
        scale = 1.0
    else:
        scale = _scale(src, band, default_scale)
        wide = raw.astype(np.float64)  # in place: a full-size day's band is 58M values, each temporary 466 MB
        wide *= scale
        wide += src.offsets[band - 1]
        values = wide.astype(dtype, copy=False)
        del wide
    fills = [f for f in (src.nodata, default_fill if raw.dtype.kind != "f" else None) if f is not None]
    for fill in fills:
        values[raw == fill] = np.nan
    if raw.dtype.kind == "f":
        values[~np.isfinite(raw)] = np.nan
    return values, scale


def _grid(src: Any, source: str) -> tuple[np.ndarray, np.ndarray]:
    if src.crs is None or src.crs.to_epsg() != 4326:
        raise InputError(source, f"expected EPSG:4326 lat-lon, found CRS {src.crs}")
    t = src.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise InputError(source, f"not a north-up regular lat-lon grid: transform {tuple(t)[:6]}")
    return t.f + t.e * (np.arange(src.height) + 0.5), t.c + t.a * (np.arange(src.width) + 0.5)


def _product(path: str, tags: dict[str, str], source: str) -> str:
    for text in (tags.get("product", ""), Path(path).name):
        found = _PRODUCT.search(text)
        if found:
            return found[1].upper()
    for prefix, product in _SEED_PLATFORM.items():
        if Path(path).name.lower().startswith(prefix):
            return product
    raise InputError(source, "cannot tell the product (MOD11A1 or MYD11A1) from its tags or name")


def read(path: str, source: str, max_error_k: int | None, night: bool) -> list[xr.Dataset]:
    """The file's day as a one-element list of ``read_modis`` datasets."""
    return list(read_blocks(path, source, max_error_k, night, rows=None))


def read_blocks(path: str, source: str, max_error_k: int | None, night: bool, rows: int | None) -> Iterator[xr.Dataset]:
    """The file's day as ``read_modis`` datasets of ``rows`` rows of pixels each (``None``: all in one), in row
    order, so that a full-size day (5400 x 10800) is never decoded whole; ``qc_counts`` counts each block's pixels."""
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

    try:
        with ExitStack() as files:
            src = files.enter_context(rasterio.open(path))
            tags = src.tags()
            names = [d or "" for d in src.descriptions]
            half = "Night" if night else "Day"
            if src.count > 1:  # the sample's form: named bands in one file
                wanted = {"lst": f"LST_{half}", "view_time": f"{half}_view_time"}
                absent = [w for w in wanted.values() if w not in names]
                if absent:
                    raise InputError(source, f"missing band(s) {', '.join(absent)}; found {tuple(names)}")
                lst_band, view_band = names.index(wanted["lst"]) + 1, names.index(wanted["view_time"]) + 1
                layer = wanted["lst"]
            else:
                lst_band, view_band = 1, None
                appeears = _APPEEARS_LST.search(Path(source).name)
                layer = f"LST_{appeears[1]}_1km" if appeears else names[0] or f"LST_{half}"
            lat, lon = _grid(src, source)
            scale = 1.0 if np.dtype(src.dtypes[lst_band - 1]).kind == "f" else _scale(src, lst_band, LST_SCALE)
            footprint = (float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max()))
            shape, transform = (src.height, src.width), src.transform
            qc_path, view_path = companion(path, "QC"), companion(path, "view_time")
            qc_src = None if qc_path is None else files.enter_context(_open_companion(qc_path, shape, transform))
            view_src = None if view_path is None else files.enter_context(_open_companion(view_path, shape, transform))
            product = _product(path, tags, source)
            inside = [dt.date.fromisoformat(tags["date"])] if "date" in tags else []
            dates, date_source = check_dates(source, inside, source)
            try:
                facts = FileFacts(source, product, platform_of(product), layer, "geotiff", footprint, scale, date_source)
            except ValueError as exc:
                raise InputError(source, str(exc)) from exc
            step = rows or src.height
            for first in range(0, src.height, step):
                window = Window(0, first, src.width, min(step, src.height - first))
                lst = _decode(src, lst_band, LST_SCALE, LST_FILL, window=window)[0]
                view = None
                if view_band:
                    view = _decode(src, view_band, VIEW_TIME_SCALE, _view_time_fill(src, view_band), np.float64, window)[0]
                qc = np.full(lst.shape, NO_QC, dtype=np.int16) if qc_src is None else _read_companion(qc_src, _read_qc, window)
                if view_src is not None:
                    view = _read_companion(view_src, _read_view_time, window)
                layers = Layers(lst, qc, view, partial(_coordinates, lat[first : first + lst.shape[0]], lon))
                yield day_dataset(facts, dates[0], layers, max_error_k)
    except RasterioIOError as exc:
        raise InputError(source, f"cannot read GeoTIFF: {exc}") from exc


def _coordinates(lat: np.ndarray, lon: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lat[rows], lon[cols]


@contextmanager
def _open_companion(path: Path, shape: tuple[int, int], transform: Any) -> Iterator[Any]:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(str(path), f"cannot read GeoTIFF: {exc}") from exc
    with src:
        if (src.height, src.width) != shape or src.transform != transform:
            raise InputError(str(path), f"grid {src.height}x{src.width} {tuple(src.transform)[:6]} differs from its LST layer's")
        yield src


def _read_companion(src: Any, decode: Callable[[Any, Any], np.ndarray], window: Any) -> np.ndarray:
    """``decode(src, window)``; an unreadable companion is named in the error."""
    from rasterio.errors import RasterioIOError

    try:
        return decode(src, window)
    except RasterioIOError as exc:
        raise InputError(str(src.name), f"cannot read GeoTIFF: {exc}") from exc


def _read_qc(src: Any, window: Any = None) -> np.ndarray:
    raw = src.read(1, window=window)
    qc = raw.astype(np.int16)
    if src.nodata is not None:
        qc[raw == src.nodata] = _QC_NOT_PRODUCED
    return qc


def _view_time_fill(src: Any, band: int) -> int | None:
    """The product's view-time fill, 255, applies to its own 8-bit encoding only."""
    return VIEW_TIME_FILL if src.dtypes[band - 1] == "uint8" else None


def _read_view_time(src: Any, window: Any = None) -> np.ndarray:
    return _decode(src, 1, VIEW_TIME_SCALE, _view_time_fill(src, 1), np.float64, window)[0]
