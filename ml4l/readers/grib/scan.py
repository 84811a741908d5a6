"""Find a GRIB file's messages and read their headers, without decoding any values.

Messages are framed from their bytes (``GRIB``, the edition's length field, ``7777``
at the end); whatever lies between and after them is skipped, as ecCodes does, and
logged (zero padding, as MARS and the CDS write, at INFO; anything else at WARNING).
A message that cannot be framed (a wrong length, no ``7777``, a truncated file)
stops the scan with a :class:`~ml4l.readers.grib.errors.GribError` naming the file,
the message, its byte offset and the key at fault: never skipped silently.

Headers are parsed without ecCodes where that is safe and fast: the first message
of each kind (the same product definition apart from its reference time, the same
grid section, packing template and bitmap presence) is read by ecCodes, and the
parameter, level, units, validity offset and grid it gives are reused for the next
messages of that kind, whose own bytes give the reference time and the packing
numbers. A kind is reused only when ml4l's own parse of its first message agrees
with ecCodes on every number it reads; calendar-dependent time units (months,
years), GRIB1's large-message encoding and anything unusual always go to ecCodes.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

import eccodes
import numpy as np

from ml4l.errors import InputError
from ml4l.grids import Grid
from ml4l.lake import retry_io
from ml4l.readers.grib.errors import Where
from ml4l.readers.grib.grid import Layout, layout_from_handle
from ml4l.types import PathLike

log = logging.getLogger("ml4l.readers.grib")

_FAST_BITS = frozenset({0, 8, 16, 24, 32})
_CALENDAR_UNITS = frozenset({3, 4, 5, 6, 7})  # month, year, decade, normal, century: no fixed length


@dataclass(frozen=True)
class Message:
    """One GRIB message: where it lies in its file, what it holds, on which grid, and how it is packed."""

    number: int
    """1-based position in the file."""
    offset: int
    length: int
    edition: int
    param_id: int
    short_name: str
    units: str
    type_of_level: str
    level: int
    ensemble_member: int
    """ecCodes' ``number`` (0 when the message has none)."""
    valid_time: np.datetime64
    layout: Layout
    packing_type: str
    bitmap: bool
    bits_per_value: int
    reference_value: float
    binary_scale_factor: int
    decimal_scale_factor: int
    data_offset: int
    """Offset of the packed values from the start of the message."""
    fast: bool
    """Whether ml4l's own decoder unpacks it (simple packing, no bitmap, 0/8/16/24/32 bits); else ecCodes."""

    @property
    def grid(self) -> Grid:
        return self.layout.grid

    def where(self, source: str) -> Where:
        return Where(source, self.number, self.offset)


@dataclass(frozen=True)
class Scan:
    """The messages of one GRIB file."""

    path: str
    messages: tuple[Message, ...]

    @property
    def grid(self) -> Grid:
        """The grid all messages share.

        Raises
        ------
        GribError
            Naming the first message on another grid than the first message's.
        """
        first = self.messages[0].grid
        for message in self.messages[1:]:
            if message.grid != first:
                raise message.where(self.path).error(
                    "grid", f"{message.grid.name} differs from {first.name} of message 1: the file mixes grids"
                )
        return first


def scan(path: PathLike) -> Scan:
    """Read the headers of every message in ``path``.

    Raises
    ------
    InputError
        The file is missing, empty or holds no GRIB message.
    GribError
        A message cannot be framed or its grid cannot be read exactly.
    """
    source = str(path)
    if os.path.isdir(source):
        raise InputError(source, "is a directory, not a GRIB file")
    if not os.path.isfile(source):
        raise InputError(source, "file not found")
    if not os.access(source, os.R_OK):
        raise InputError(source, "cannot read the file: permission denied")
    size = os.path.getsize(source)
    if size == 0:
        raise InputError(source, "empty file: no GRIB message")
    messages: list[Message] = []
    cache = _Cache()
    covered = 0
    with retry_io(lambda: open(source, "rb")) as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        while (start := mapped.find(b"GRIB", covered)) >= 0:
            _log_skipped(mapped, source, covered, start)
            where = Where(source, len(messages) + 1, start)
            message = _frame_and_read(mapped, stream, where, cache)
            messages.append(message)
            covered = message.offset + message.length
        _log_skipped(mapped, source, covered, size)
    if not messages:
        raise InputError(source, "not a GRIB file: no GRIB message found")
    return Scan(source, tuple(messages))


def _frame_and_read(mapped: mmap.mmap, stream: BinaryIO, where: Where, cache: _Cache) -> Message:
    start, size = where.offset, len(mapped)
    if start + 16 > size:
        raise where.error("totalLength", f"cannot be framed: the file ends {size - start} bytes after GRIB; it is truncated")
    edition = mapped[start + 7]
    if edition == 1:
        length = int.from_bytes(mapped[start + 4 : start + 7], "big")
        if length & 0x800000:  # ECMWF's large GRIB1 encoding: let ecCodes frame and read it
            stream.seek(start)
            return _read_with_eccodes(stream, where, cache, None)
    elif edition == 2:
        length = int.from_bytes(mapped[start + 8 : start + 16], "big")
    else:
        raise where.error("editionNumber", f"{edition} is not a GRIB edition (1 or 2): corrupt bytes")
    if start + length > size:
        raise where.error(
            "totalLength", f"cannot be framed: section 0 gives {length} bytes, the file ends after {size - start}; it is truncated"
        )
    if length < 16 or mapped[start + length - 4 : start + length] != b"7777":
        raise where.error(
            "totalLength", f"cannot be framed: section 0 gives {length} bytes and they do not end with 7777; the message is corrupt"
        )
    parsed = _parse(mapped, start, length, edition, where)
    if parsed is not None:
        found = cache.message(parsed, where, length)
        if found is not None:
            return found
    return _read_with_eccodes(mapped[start : start + length], where, cache, parsed)


def _read_with_eccodes(source: bytes | BinaryIO, where: Where, cache: _Cache, parsed: _Parsed | None) -> Message:
    """Read one message's headers with ecCodes, and remember its kind when ml4l's own parse agrees."""
    try:
        handle = (
            eccodes.codes_new_from_message(source)
            if isinstance(source, bytes)
            else eccodes.codes_grib_new_from_file(source, headers_only=True)
        )
    except Exception as exc:  # ecCodes raises WrongLengthError, PrematureEndOfFileError, DecodingError, ...
        raise where.error("totalLength", f"cannot be framed ({type(exc).__name__}: {exc}); the message is corrupt or truncated") from exc
    if handle is None:
        raise where.error("totalLength", "cannot be framed: ecCodes finds no message here")
    try:
        message = _message(handle, where, cache.layouts)
        if parsed is not None:
            cache.learn(handle, parsed, message)
    finally:
        eccodes.codes_release(handle)
    return message


def _log_skipped(mapped: mmap.mmap, source: str, start: int, end: int) -> None:
    if end <= start:
        return
    gap = mapped[start:end]
    if gap.count(0) == len(gap):
        log.info("%s: skipped %d bytes of zero padding at byte %d", source, len(gap), start)
    else:
        log.warning("%s: skipped %d bytes outside any GRIB message at byte %d", source, len(gap), start)


def _long(handle: int, key: str, default: int = 0) -> int:
    if not eccodes.codes_is_defined(handle, key) or eccodes.codes_is_missing(handle, key):
        return default
    return int(eccodes.codes_get_long(handle, key))


def _scaled_units(handle: int) -> bool:
    """Whether ecCodes rescales the decoded values (GRIB1 local ``unitsFactor``/``unitsBias``)."""
    return bool(eccodes.codes_is_defined(handle, "unitsFactor")) and (
        eccodes.codes_get_double(handle, "unitsFactor") != 1.0 or eccodes.codes_get_double(handle, "unitsBias") != 0.0
    )


def _valid_time(handle: int, where: Where) -> np.datetime64:
    date = _long(handle, "validityDate")
    hhmm = _long(handle, "validityTime")
    try:
        return np.datetime64(f"{date // 10000:04d}-{date // 100 % 100:02d}-{date % 100:02d}T{hhmm // 100:02d}:{hhmm % 100:02d}", "ns")
    except ValueError as exc:
        raise where.error("validityDate", f"{date} {hhmm:04d} is not a date and time") from exc


def _message(handle: int, where: Where, layouts: dict[tuple[int, str], Layout]) -> Message:
    offset = where.offset
    edition = int(eccodes.codes_get_long(handle, "edition"))
    grid_key = (edition, eccodes.codes_get_string(handle, "md5GridSection"))
    layout = layouts.get(grid_key)
    if layout is None:
        layout = layouts[grid_key] = layout_from_handle(handle, where)
    packing_type = eccodes.codes_get_string(handle, "packingType")
    bitmap = bool(_long(handle, "bitmapPresent"))
    bits = _long(handle, "bitsPerValue")
    scaled_units = _scaled_units(handle)
    return Message(
        number=where.number,
        offset=offset,
        length=int(eccodes.codes_get_long(handle, "totalLength")),
        edition=edition,
        param_id=_long(handle, "paramId"),
        short_name=eccodes.codes_get_string(handle, "shortName"),
        units=eccodes.codes_get_string(handle, "units"),
        type_of_level=eccodes.codes_get_string(handle, "typeOfLevel"),
        level=_long(handle, "level"),
        ensemble_member=_long(handle, "number"),
        valid_time=_valid_time(handle, where),
        layout=layout,
        packing_type=packing_type,
        bitmap=bitmap,
        bits_per_value=bits,
        reference_value=float(eccodes.codes_get_double(handle, "referenceValue")) if packing_type == "grid_simple" else 0.0,
        binary_scale_factor=_long(handle, "binaryScaleFactor"),
        decimal_scale_factor=_long(handle, "decimalScaleFactor"),
        data_offset=_long(handle, "offsetBeforeData"),
        fast=packing_type == "grid_simple" and not bitmap and bits in _FAST_BITS and not scaled_units,
    )


# ---- ml4l's own header parse, and the kinds of message ecCodes has read ----


@dataclass(frozen=True)
class _Parsed:
    """What ml4l reads from a message's own bytes."""

    edition: int
    kind: bytes
    """The product definition with its reference time blanked, the packing template and the bitmap's presence."""
    grid_section: bytes
    reference: np.datetime64
    bitmap: bool
    bits: int
    reference_value: float
    binary_scale: int
    decimal_scale: int
    data_offset: int


@dataclass(frozen=True)
class _Kind:
    """What ecCodes said about the first message of a kind."""

    param_id: int
    short_name: str
    units: str
    type_of_level: str
    level: int
    ensemble_member: int
    validity_offset: np.timedelta64
    packing_type: str
    fast_packing: bool
    """Simple packing without units scaling: the own decoder applies when bits and bitmap allow."""


def _u(mapped: mmap.mmap, at: int, size: int) -> int:
    return int.from_bytes(mapped[at : at + size], "big")


def _signed(mapped: mmap.mmap, at: int) -> int:
    """A 16-bit sign-and-magnitude integer, as GRIB writes scale factors."""
    value = _u(mapped, at, 2)
    return -(value & 0x7FFF) if value & 0x8000 else value


def _ibm(word: int) -> float:
    """A 32-bit IBM float (GRIB1 reference value) as ecCodes converts it: exactly."""
    exponent, mantissa = (word >> 24) & 0x7F, word & 0xFFFFFF
    if exponent == 0 and mantissa <= 1:
        return 0.0
    value = mantissa * 16.0 ** (exponent - 70)
    return -value if word >> 31 else value


def _time(year: int, month: int, day: int, hour: int, minute: int) -> np.datetime64 | None:
    try:
        return np.datetime64(f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}", "ns")
    except ValueError:
        return None


def _parse(mapped: mmap.mmap, start: int, length: int, edition: int, where: Where) -> _Parsed | None:
    """The header numbers of a message from its bytes; ``None`` when its structure is anything unusual."""
    return _parse_grib1(mapped, start, length) if edition == 1 else _parse_grib2(mapped, start, length, where)


def _parse_grib1(mapped: mmap.mmap, start: int, length: int) -> _Parsed | None:
    pds = start + 8
    pds_length, flags = _u(mapped, pds, 3), mapped[pds + 7]
    if pds_length < 28 or not flags & 0x80:  # no grid definition section: a predefined grid, for ecCodes
        return None
    gds = pds + pds_length
    position = gds + _u(mapped, gds, 3)
    bitmap = bool(flags & 0x40)
    if bitmap:
        if _u(mapped, position + 4, 2) != 0:  # a predefined bitmap
            return None
        position += _u(mapped, position, 3)
    bds = position
    if bds + _u(mapped, bds, 3) + 4 != start + length:
        return None
    century, year = mapped[pds + 24], mapped[pds + 12]
    reference = _time((century - 1) * 100 + year, mapped[pds + 13], mapped[pds + 14], mapped[pds + 15], mapped[pds + 16])
    if reference is None:
        return None
    product = bytearray(mapped[pds:gds])
    product[12:17] = b"\0" * 5  # the reference time (and its century, next) vary within a kind
    product[24] = 0
    return _Parsed(
        edition=1,
        kind=b"1" + bytes(product) + bytes([mapped[bds + 3] & 0xF0, bitmap]),
        grid_section=mapped[gds : gds + _u(mapped, gds, 3)],
        reference=reference,
        bitmap=bitmap,
        bits=mapped[bds + 10],
        reference_value=_ibm(_u(mapped, bds + 6, 4)),
        binary_scale=_signed(mapped, bds + 4),
        decimal_scale=_signed(mapped, pds + 26),
        data_offset=bds + 11 - start,
    )


def _parse_grib2(mapped: mmap.mmap, start: int, length: int, where: Where) -> _Parsed | None:
    sections: dict[int, tuple[int, int]] = {}
    position, end = start + 16, start + length - 4
    while position < end:
        size, number = _u(mapped, position, 4), mapped[position + 4]
        if size < 5 or position + size > end:
            return None
        if number in sections:
            raise where.error(
                "numberOfSection",
                f"section {number} repeats: a message of several fields (split it with grib_copy); ecCodes would read only the first",
            )
        sections[number] = (position, size)
        position += size
    if position != end or not {1, 3, 4, 5, 6, 7} <= sections.keys():
        return None
    (s1, n1), (s3, n3), (s4, n4), (s5, n5), (s6, _), (s7, _) = (sections[k] for k in (1, 3, 4, 5, 6, 7))
    reference = _time(_u(mapped, s1 + 12, 2), mapped[s1 + 14], mapped[s1 + 15], mapped[s1 + 16], mapped[s1 + 17])
    if reference is None or n1 < 21:
        return None
    template, indicator = _u(mapped, s5 + 9, 2), mapped[s6 + 5]
    identity = bytearray(mapped[s1 : s1 + n1])
    identity[12:19] = b"\0" * 7
    local = mapped[sections[2][0] : sections[2][0] + sections[2][1]] if 2 in sections else b""
    simple = template == 0 and n5 >= 21
    return _Parsed(
        edition=2,
        kind=b"2"
        + bytes([mapped[start + 6]])
        + bytes(identity)
        + local
        + mapped[s4 : s4 + n4]
        + template.to_bytes(2, "big")
        + bytes([indicator]),
        grid_section=mapped[s3 : s3 + n3],
        reference=reference,
        bitmap=indicator != 255,
        bits=mapped[s5 + 19] if simple else 0,
        reference_value=struct.unpack(">f", mapped[s5 + 11 : s5 + 15])[0] if simple else 0.0,
        binary_scale=_signed(mapped, s5 + 15) if simple else 0,
        decimal_scale=_signed(mapped, s5 + 17) if simple else 0,
        data_offset=s7 + 5 - start,
    )


@dataclass
class _Cache:
    """The kinds and grids of messages ecCodes has read in one file."""

    layouts: dict[tuple[int, str], Layout] = field(default_factory=dict)
    kinds: dict[bytes, _Kind] = field(default_factory=dict)
    grids: dict[bytes, Layout] = field(default_factory=dict)

    def message(self, parsed: _Parsed, where: Where, length: int) -> Message | None:
        """The message from its own bytes and a known kind and grid; ``None`` if either is new."""
        kind, layout = self.kinds.get(parsed.kind), self.grids.get(parsed.edition.to_bytes(1, "big") + parsed.grid_section)
        if kind is None or layout is None:
            return None
        return Message(
            number=where.number, offset=where.offset, length=length, edition=parsed.edition,
            param_id=kind.param_id, short_name=kind.short_name, units=kind.units, type_of_level=kind.type_of_level,
            level=kind.level, ensemble_member=kind.ensemble_member, valid_time=parsed.reference + kind.validity_offset,
            layout=layout, packing_type=kind.packing_type, bitmap=parsed.bitmap, bits_per_value=parsed.bits,
            reference_value=parsed.reference_value, binary_scale_factor=parsed.binary_scale,
            decimal_scale_factor=parsed.decimal_scale, data_offset=parsed.data_offset,
            fast=kind.fast_packing and not parsed.bitmap and parsed.bits in _FAST_BITS,
        )  # fmt: skip

    def learn(self, handle: int, parsed: _Parsed, message: Message) -> None:
        """Remember ``message``'s kind and grid if ml4l's parse of it agrees with ecCodes on every number."""
        unit_key = "unitOfTimeRange" if parsed.edition == 1 else "indicatorOfUnitOfTimeRange"
        date, hhmm = _long(handle, "dataDate"), _long(handle, "dataTime")
        reference = _time(date // 10000, date // 100 % 100, date % 100, hhmm // 100, hhmm % 100)
        simple = message.packing_type == "grid_simple"
        agrees = (
            reference == parsed.reference
            and _long(handle, unit_key) not in _CALENDAR_UNITS
            and parsed.bitmap == message.bitmap
            and (not simple or (parsed.bits, parsed.reference_value, parsed.binary_scale, parsed.decimal_scale, parsed.data_offset)
                 == (message.bits_per_value, message.reference_value, message.binary_scale_factor, message.decimal_scale_factor,
                     message.data_offset))
        )  # fmt: skip
        if not agrees or reference is None:
            return
        self.kinds[parsed.kind] = _Kind(
            message.param_id, message.short_name, message.units, message.type_of_level, message.level, message.ensemble_member,
            message.valid_time - reference, message.packing_type, simple and not _scaled_units(handle),
        )  # fmt: skip
        self.grids[parsed.edition.to_bytes(1, "big") + parsed.grid_section] = message.layout
