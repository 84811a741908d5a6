"""GRIB (editions 1 and 2) as MARS and the CDS write it: scan, decode, read, write.

- :mod:`.scan`: frame the messages and read their headers without decoding values.
- :mod:`.grid`: each message's grid and point order (:class:`~.grid.Layout`).
- :mod:`.decode`: values as float32, own decoder for plain simple packing, ecCodes for the rest.
- :mod:`.api`: :func:`read_grib`, the public reader.
- :mod:`.write`: GRIB1 files as MARS writes them (the sample inputs).
"""

from __future__ import annotations

from ml4l.readers.grib.api import read_grib
from ml4l.readers.grib.decode import decode, decode_each, for_each_decoded, unpack_simple
from ml4l.readers.grib.errors import GribError, Where
from ml4l.readers.grib.grid import Layout, layout_from_handle
from ml4l.readers.grib.scan import Message, Scan, scan
from ml4l.readers.grib.write import MARS_PADDING, GribWriter, template, write_fields
from ml4l.variables import BY_PARAM_ID, Variable


def variable_of(message: Message, source: str) -> Variable:
    """The ERA variable a message holds."""
    try:
        return BY_PARAM_ID[message.param_id]
    except KeyError:
        raise message.where(source).error("paramId", f"unexpected GRIB parameter {message.param_id} ({message.short_name})") from None


__all__ = [
    "MARS_PADDING", "GribError", "GribWriter", "Layout", "Message", "Scan", "Where",
    "decode", "decode_each", "for_each_decoded", "layout_from_handle", "read_grib", "scan", "template", "unpack_simple",
    "variable_of", "write_fields",
]  # fmt: skip
