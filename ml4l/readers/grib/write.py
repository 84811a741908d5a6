"""Write fields as GRIB1 with ecCodes, on a global reduced Gaussian or regular lat-lon grid.

The files look like what MARS and the CDS deliver: GRIB1, simple packing, and, with
``padding=120``, each message followed by zero bytes up to a multiple of 120 bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd

from ml4l.grids import Grid, octahedral_pl
from ml4l.types import PathLike
from ml4l.variables import Variable

MARS_PADDING = 120
"""MARS and the CDS pad each GRIB message with zeros to a multiple of this many bytes."""

_SHIPPED_GAUSSIAN = (32, 48, 64, 80, 96, 128, 160, 200, 256, 320, 400, 512, 640, 1024, 1280, 2000)


def template(grid: Grid, bits_per_value: int = 16) -> int:
    """A GRIB1 handle on the global ``grid`` (``N``, ``O`` or ``LL``) with simple packing; release it after use."""
    if grid.name[:1] in {"N", "O"}:
        handle = _reduced_gaussian(grid)
    elif grid.name.startswith("LL") and grid.is_global:
        handle = _regular_ll(grid)
    else:
        raise ValueError(f"only global reduced Gaussian and regular lat-lon grids can be written, not {grid.name}")
    eccodes.codes_set(handle, "bitsPerValue", bits_per_value)
    eccodes.codes_set(handle, "centre", "ecmf")
    eccodes.codes_set(handle, "marsClass", "ea")
    return handle


def _reduced_gaussian(grid: Grid) -> int:
    n = grid.pl.size // 2
    sample = n if n in _SHIPPED_GAUSSIAN else 96
    handle = eccodes.codes_grib_new_from_samples(f"reduced_gg_pl_{sample}_grib1")
    if grid.name.startswith("O") or sample != n:
        eccodes.codes_set(handle, "N", n)
        eccodes.codes_set(handle, "Nj", 2 * n)
        eccodes.codes_set_array(handle, "pl", grid.pl if grid.name.startswith("N") else octahedral_pl(n))
        eccodes.codes_set(handle, "latitudeOfFirstGridPointInDegrees", float(grid.row_lat[0]))
        eccodes.codes_set(handle, "latitudeOfLastGridPointInDegrees", float(grid.row_lat[-1]))
        eccodes.codes_set(handle, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / float(grid.pl.max()))
    return handle


def _regular_ll(grid: Grid) -> int:
    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib1")
    ni, nj = int(grid.pl[0]), grid.pl.size
    step = 360.0 / ni
    for key, value in [
        ("Ni", ni), ("Nj", nj),
        ("iDirectionIncrementInDegrees", step), ("jDirectionIncrementInDegrees", step),
        ("latitudeOfFirstGridPointInDegrees", float(grid.row_lat[0])), ("latitudeOfLastGridPointInDegrees", float(grid.row_lat[-1])),
        ("longitudeOfFirstGridPointInDegrees", 0.0), ("longitudeOfLastGridPointInDegrees", 360.0 - step),
    ]:  # fmt: skip
        eccodes.codes_set(handle, key, value)
    return handle


class GribWriter:
    """Writes fields to a GRIB1 file on ``grid``; the file appears, complete, only on a clean close.

    ``padding`` > 0 follows each message with zero bytes up to a multiple of that
    many bytes (:data:`MARS_PADDING` as MARS and the CDS do). Use it as a context
    manager; on an error the partial file is removed.
    """

    def __init__(self, path: PathLike, grid: Grid, bits_per_value: int = 16, padding: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.padding = padding
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._base = template(grid, bits_per_value)
        self._out = open(self._partial, "wb")  # noqa: SIM115 - __exit__ closes it and renames it into place

    def write(self, variable: Variable, time: pd.Timestamp, values: np.ndarray) -> None:
        """Append one field valid at ``time``."""
        handle = eccodes.codes_clone(self._base)
        try:
            eccodes.codes_set(handle, "paramId", variable.param_id)
            eccodes.codes_set(handle, "dataDate", int(time.strftime("%Y%m%d")))
            eccodes.codes_set(handle, "dataTime", int(time.strftime("%H%M")))
            eccodes.codes_set_values(handle, np.asarray(values, dtype=np.float64))
            message = eccodes.codes_get_message(handle)
        finally:
            eccodes.codes_release(handle)
        self._out.write(message)
        if self.padding:
            self._out.write(b"\0" * (-len(message) % self.padding))

    def __enter__(self) -> GribWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._out.close()
        eccodes.codes_release(self._base)
        if error is None:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)


def write_fields(
    path: PathLike,
    grid: Grid,
    fields: Iterable[tuple[Variable, pd.Timestamp, np.ndarray]],
    bits_per_value: int = 16,
    padding: int = 0,
) -> Path:
    """Write ``(variable, valid time, values)`` fields to a GRIB1 file, atomically."""
    with GribWriter(path, grid, bits_per_value, padding) as writer:
        for variable, time, values in fields:
            writer.write(variable, time, values)
    return writer.path
