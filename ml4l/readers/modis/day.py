"""What every MODIS reader shares: the QC classes and filter, dates, and one day as an ``xarray.Dataset``.

A reader decodes its format to 2-D arrays (LST in K, the QC byte, the local solar
view hour, the pixel coordinates) and hands them to :func:`day_dataset`, which keeps
the observed pixels that pass the QC filter and turns the view hour into UTC.

QC (MOD11A1/MYD11A1 C6.1 user guide, table 10): bits 0-1 are the mandatory QA
(0 produced, good; 1 produced, other quality; 2 not produced, cloud; 3 not produced,
other), bits 6-7 the LST error class (0: <= 1 K, 1: <= 2 K, 2: <= 3 K, 3: > 3 K).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ml4l.errors import InputError

LST_SCALE = 0.02
"""The product's documented LST scale (K per count); 0 is fill."""
VIEW_TIME_SCALE = 0.1
"""The product's documented view-time scale (hours per count); 255 is fill."""
LST_FILL = 0
VIEW_TIME_FILL = 255
LST_RANGE_K = (150.0, 380.0)
"""A decoded LST outside this range is an error of the file or of its scale, never weather."""

NOMINAL_OVERPASS = {"Aqua": {"Day": 13.5, "Night": 1.5}, "Terra": {"Day": 10.5, "Night": 22.5}}
"""Local solar equator-crossing hours, used when a file carries no view time."""
PLATFORMS = {"MYD": "Aqua", "MOD": "Terra"}

NO_QC = -1
"""The ``qc`` of a pixel from a file that has no QC layer (the seed's own form is filtered upstream)."""
QC_CLASSES = ("not_produced", "error_le_1K", "error_le_2K", "error_le_3K", "error_gt_3K", "no_qc")
"""How pixels are counted: LST not produced (fill or mandatory QA 2-3), the LST error class of those
produced, or ``no_qc`` for files without a QC layer."""
MAX_ERROR_CHOICES = (1, 2, 3, None)
"""Recipe values of ``max_lst_error_k``: keep error classes up to 1, 2 or 3 K, or every produced pixel."""

# A small margin (hours) against float rounding when the local hour is recovered from the UTC hour.
_HOUR_MARGIN = 1e-6


def platform_of(product: str) -> str:
    """``Aqua`` for MYD products, ``Terra`` for MOD products."""
    platform = PLATFORMS.get(product[:3].upper())
    if platform is None:
        raise ValueError(f"not a MODIS Terra (MOD) or Aqua (MYD) product: {product!r}")
    return platform


# ---- dates ----

_NAME_DATES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], dt.date]], ...] = (
    (re.compile(r"\.A(\d{4})(\d{3})\."), lambda m: _from_doy(m[1], m[2])),  # NASA granule: MOD11A1.A2021227.h11v05...
    (re.compile(r"_doy(\d{4})(\d{3})_"), lambda m: _from_doy(m[1], m[2])),  # AppEEARS: ..._doy2024228_aid0001.tif
    (re.compile(r"(\d{4}-\d{2}-\d{2})\.[^.]+$"), lambda m: dt.date.fromisoformat(m[1])),  # the seed: ..._2019-02-01.tif
)


def _from_doy(year: str, doy: str) -> dt.date:
    return dt.date(int(year), 1, 1) + dt.timedelta(days=int(doy) - 1)


def name_date(path: str) -> dt.date | None:
    """The date a MODIS file's name gives, or ``None`` if its name has none."""
    name = Path(path).name
    for pattern, convert in _NAME_DATES:
        found = pattern.search(name)
        if found:
            try:
                return convert(found)
            except ValueError:
                return None
    return None


def check_dates(source: str, inside: list[dt.date], path: str) -> tuple[list[dt.date], str]:
    """The file's days and where they came from (``content`` or ``name``).

    Raises
    ------
    InputError
        When the name gives a date the content does not, naming both, or when neither gives one.
    """
    named = name_date(path)
    if inside:
        if named is not None and inside != [named]:
            found = ", ".join(d.isoformat() for d in inside)
            raise InputError(source, f"the file says it holds {found} but its name says {named.isoformat()}")
        return inside, "content"
    if named is None:
        raise InputError(source, "no date inside the file and none in its name")
    return [named], "name"


# ---- QC ----


def qc_classes(lst_present: np.ndarray, qc: np.ndarray) -> np.ndarray:
    """Index into :data:`QC_CLASSES` of each pixel."""
    qc = qc.astype(np.int16)
    error_class = (qc >> 6) & 0b11
    produced = lst_present & ((qc == NO_QC) | ((qc & 0b11) <= 1))
    classes = np.where(qc == NO_QC, QC_CLASSES.index("no_qc"), 1 + error_class)
    return np.where(produced, classes, QC_CLASSES.index("not_produced")).astype(np.int8)


def kept_classes(max_error_k: int | None) -> frozenset[str]:
    """QC classes that pass the filter: error classes up to ``max_error_k`` K, and files without QC."""
    if max_error_k not in MAX_ERROR_CHOICES:
        raise ValueError(f"max_lst_error_k must be one of 1, 2, 3 or None, got {max_error_k!r}")
    errors = QC_CLASSES[1:5] if max_error_k is None else QC_CLASSES[1 : 1 + max_error_k]
    return frozenset((*errors, "no_qc"))


# ---- one day ----


@dataclass(frozen=True)
class Layers:
    """One day of one file as decoded 2-D arrays (rows, columns), before the QC filter.

    ``lst`` is float32 K with NaN for fill, ``qc`` the QC byte (:data:`NO_QC` when the file
    has none), ``view_time`` the local solar hour with NaN for fill, or ``None`` when the
    file has no view time (the nominal overpass is used). ``coordinates`` gives latitude
    and longitude of the pixels at given (row, column) indices; NaN longitude marks a cell
    that is not on the Earth (the sinusoidal tiles' corners).
    """

    lst: np.ndarray
    qc: np.ndarray
    view_time: np.ndarray | None
    coordinates: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FileFacts:
    """What a reader learned about the file as a whole."""

    source: str
    product: str
    platform: str
    layer: str
    file_format: str
    footprint: tuple[float, float, float, float]
    """(south, north, west, east) of the pixel centres, degrees."""
    lst_scale: float
    date_source: str


def day_dataset(facts: FileFacts, date: dt.date, layers: Layers, max_error_k: int | None) -> xr.Dataset:
    """The observed pixels of one day that pass the QC filter, as the ``pixel`` dataset of ``read_modis``.

    Raises
    ------
    InputError
        When a kept LST lies outside :data:`LST_RANGE_K` (a wrong or missing scale) or a
        view time outside [0, 24) h.
    """
    present = ~np.isnan(layers.lst)
    classes = qc_classes(present, layers.qc)
    kept = np.isin(classes, [QC_CLASSES.index(c) for c in kept_classes(max_error_k)])
    if layers.view_time is not None:
        kept &= ~np.isnan(layers.view_time)
    rows, cols = np.nonzero(kept)
    lat, lon = layers.coordinates(rows, cols)
    on_earth = ~np.isnan(lon)
    rows, cols, lat, lon = rows[on_earth], cols[on_earth], lat[on_earth], lon[on_earth]
    counts = {name: int(np.count_nonzero(classes == k)) for k, name in enumerate(QC_CLASSES)}

    lst = layers.lst[rows, cols].astype(np.float32)
    outside = (lst < LST_RANGE_K[0]) | (lst > LST_RANGE_K[1])
    if outside.any():
        raise InputError(
            facts.source,
            f"{int(outside.sum())} of {lst.size} {facts.layer} values lie outside "
            f"{LST_RANGE_K[0]:g}-{LST_RANGE_K[1]:g} K "
            f"after scaling by {facts.lst_scale:g} (e.g. {float(lst[outside][0]):.2f} K): wrong scale or not LST in K",
        )
    if layers.view_time is None:
        local = np.full(lst.size, NOMINAL_OVERPASS[facts.platform][_half(facts.layer)], dtype=np.float64)
        view_time_source = "nominal overpass"
    else:
        local = layers.view_time[rows, cols].astype(np.float64)
        view_time_source = "file"
        if local.size and not (local.min() >= 0 and local.max() < 24):
            raise InputError(facts.source, f"view time outside [0, 24) h: {local.min():.2f} to {local.max():.2f}")
    return xr.Dataset(
        {
            "lst": ("pixel", lst, {"units": "K", "long_name": f"{facts.layer} land-surface temperature"}),
            "view_time": (
                "pixel",
                np.mod(local - lon / 15.0, 24.0),
                {"units": "h", "long_name": "UTC hour of the observation"},
            ),
            "qc": (
                "pixel",
                layers.qc[rows, cols].astype(np.int16),
                {"long_name": "MODIS QC byte, -1: the file has none"},
            ),
        },
        coords={
            "latitude": ("pixel", lat.astype(np.float64), {"units": "degrees_north"}),
            "longitude": ("pixel", lon.astype(np.float64), {"units": "degrees_east"}),
        },
        attrs={
            "date": date.isoformat(),
            "platform": facts.platform,
            "product": facts.product,
            "source": facts.source,
            "layer": facts.layer,
            "format": facts.file_format,
            "footprint": facts.footprint,
            "date_source": facts.date_source,
            "view_time_source": view_time_source,
            "max_lst_error_k": "none" if max_error_k is None else max_error_k,
            "qc_counts": counts,
        },
    )


def _half(layer: str) -> str:
    return "Night" if "Night" in layer else "Day"


def hours_after_midnight(day: xr.Dataset) -> np.ndarray:
    """Hours of each observation after 00:00 UTC of the dataset's date, in [-12, 36).

    The date is the local solar day, so the UTC hour ``view_time`` belongs to the UTC day
    that puts the local solar hour ``view_time + longitude / 15`` into [0, 24).
    """
    utc = day["view_time"].to_numpy().astype(np.float64)
    local = utc + day["longitude"].to_numpy() / 15.0
    return utc - 24.0 * np.floor((local + _HOUR_MARGIN) / 24.0)
