"""MODIS LST readers: HDF4-EOS tiles, GeoTIFF and NetCDF, each recognised by its content.

:func:`read_modis` returns one ``xarray.Dataset`` per day of a file: dim ``pixel`` (the
observed pixels that pass the QC filter), variables ``lst`` (K, float32), ``view_time``
(UTC hour in [0, 24)) and ``qc`` (the MODIS QC byte, -1 where the file has none), coords
``latitude`` and ``longitude``, and attrs ``date`` (the local solar day, ``YYYY-MM-DD``),
``platform`` (Aqua or Terra), ``product``, ``source`` (the file) and how they were found
(``date_source``, ``view_time_source``, ``qc_counts``, ``footprint``).
"""

from __future__ import annotations

from collections.abc import Iterator

import xarray as xr

from ml4l.errors import InputError
from ml4l.lake import is_transient, retry_io
from ml4l.readers.modis import geotiff, hdf4, netcdf
from ml4l.readers.modis.day import (
    MAX_ERROR_CHOICES,
    QC_CLASSES,
    hours_after_midnight,
    kept_classes,
    name_date,
)

__all__ = [
    "MAX_ERROR_CHOICES",
    "QC_CLASSES",
    "detect_format",
    "hours_after_midnight",
    "kept_classes",
    "name_date",
    "read_modis",
    "read_modis_blocks",
]

_READERS = {"hdf4": hdf4.read, "geotiff": geotiff.read, "netcdf": netcdf.read}


def detect_format(path: str, source: str | None = None) -> str:
    """``hdf4``, ``geotiff`` or ``netcdf`` from the file's first bytes.

    Raises
    ------
    InputError
        When the path is missing, a directory, unreadable, or none of the three.
    """
    name = source or path
    try:
        head = retry_io(_first_bytes, path, 8)
    except FileNotFoundError as exc:
        raise InputError(name, "MODIS file is missing") from exc
    except IsADirectoryError as exc:
        raise InputError(name, "is a directory, not a MODIS file") from exc
    except OSError as exc:
        if is_transient(exc):  # still failing after the retries: the mount's fault, not the file's
            raise
        raise InputError(name, f"cannot read: {exc.strerror or exc}") from exc
    if head.startswith(hdf4.MAGIC):
        return "hdf4"
    if head.startswith(geotiff.MAGICS):
        return "geotiff"
    if head.startswith(netcdf.MAGICS):
        return "netcdf"
    if not head:
        raise InputError(name, "empty file, not a MODIS file")
    raise InputError(name, f"not a MODIS file: starts with {head[:4]!r}, expected HDF4, TIFF or NetCDF")


def _first_bytes(path: str, count: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(count)


def read_modis(path: str, *, max_lst_error_k: int | None = 3, night: bool = False, source: str | None = None) -> list[xr.Dataset]:
    """Every day of a MODIS LST file, observed pixels that pass the QC filter only.

    Parameters
    ----------
    path
        The file on the local disk; the format is found from its content.
    max_lst_error_k
        Keep pixels whose QC LST error class is at most 1, 2 or 3 K (``None``: every
        produced pixel). Pixels not produced are always dropped.
    night
        Read the night layers instead of the day layers.
    source
        The name to give in errors and in ``attrs["source"]`` (e.g. the lake path when
        ``path`` is a local copy); ``path`` itself by default.

    Raises
    ------
    InputError
        Naming the file and the problem: unknown content, missing layers, a date that
        disagrees with the name, LST outside 150-380 K after scaling.
    """
    name = source or path
    return _READERS[detect_format(path, name)](path, name, max_lst_error_k, night)


def read_modis_blocks(
    path: str, *, rows: int, max_lst_error_k: int | None = 3, night: bool = False, source: str | None = None
) -> Iterator[xr.Dataset]:
    """:func:`read_modis`, a GeoTIFF ``rows`` rows of pixels at a time (a full-size global day is never decoded
    whole); the other formats, tiles and NetCDF, one day at a time. Each block's ``qc_counts`` are its own."""
    name = source or path
    kind = detect_format(path, name)
    if kind == "geotiff":
        return geotiff.read_blocks(path, name, max_lst_error_k, night, rows)
    return iter(_READERS[kind](path, name, max_lst_error_k, night))
