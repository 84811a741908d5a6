"""``read_grib``: every message of a GRIB file as an ``xarray.DataArray``."""

from __future__ import annotations

import xarray as xr

from ml4l.readers.grib.decode import decode_each
from ml4l.readers.grib.scan import scan
from ml4l.types import PathLike


def read_grib(path: PathLike, workers: int | None = None) -> list[xr.DataArray]:
    """Read every message of the GRIB file at ``path``, in file order.

    Each message becomes a float32 ``DataArray`` on dim ``point``, with coords
    ``latitude`` and ``longitude`` per point in the order ecCodes gives them (the
    message's own scanning mode; global grids' longitudes in [0, 360)), NaN where
    the bitmap or the packing's missing value says missing, and attrs ``shortName``,
    ``paramId``, ``units``, ``valid_time`` (``numpy.datetime64``), ``typeOfLevel``,
    ``level``, ``number`` (ensemble member, 0 if none), ``gridType``, ``grid`` (the
    grid's name: ``N320``, ``O1280``, ``F640``, ``LL0.25``, or a sub-area such as
    ``LL4 area 73/-27/33/45``), ``edition``, ``packingType``, ``source`` and ``message``.
    Values are ecCodes' own, rounded to float32. Messages on different grids or of
    different parameters may share a file: each array carries its own coordinates.

    Zero padding and stray bytes between and after messages are skipped, as ecCodes
    does, and logged. A message that cannot be read exactly (corrupt framing, an
    unsupported grid) is an error, never skipped: the whole file is refused.

    Raises
    ------
    InputError
        The file is missing, empty (``empty file``) or holds no GRIB message.
    GribError
        (an ``InputError``) naming the file, the message number, its byte offset and
        the key at fault, e.g. ``message 1 at byte 0: totalLength: cannot be framed``.
    """
    found = scan(path)
    values = decode_each(found.path, found.messages, workers, canonical=False)
    arrays = []
    for message, field in zip(found.messages, values, strict=True):
        layout = message.layout
        attrs = {
            "shortName": message.short_name,
            "paramId": message.param_id,
            "units": message.units,
            "valid_time": message.valid_time,
            "typeOfLevel": message.type_of_level,
            "level": message.level,
            "number": message.ensemble_member,
            "gridType": layout.grid_type,
            "grid": layout.grid.name,
            "edition": message.edition,
            "packingType": message.packing_type,
            "source": found.path,
            "message": message.number,
        }
        coords = {"latitude": ("point", layout.latitudes), "longitude": ("point", layout.longitudes)}
        arrays.append(xr.DataArray(field, dims="point", coords=coords, attrs=attrs, name=message.short_name))
    return arrays
