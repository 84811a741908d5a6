"""GRIB I/O with ecCodes: write fields, scan a file's messages, and decode them fast.

Decoding unpacks simple-packed messages of 8, 16, 24 or 32 bits per value with
NumPy, straight from the file's bytes, in parallel threads; any other packing, or a
bitmap, goes through ecCodes. Both give the same float32 values bit for bit.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd

from ml4l.errors import InputError
from ml4l.grids import Grid, grid_from_handle, octahedral_pl
from ml4l.types import Float32Array, PathLike
from ml4l.variables import BY_PARAM_ID, Variable

_FAST_BITS = {8: ">u1", 16: ">u2", 32: ">u4"}


@dataclass(frozen=True)
class Message:
    """Where one GRIB message lies in its file and how to unpack it."""

    offset: int
    length: int
    param_id: int
    valid_time: np.datetime64
    data_offset: int
    """Offset of the packed values from the start of the message."""
    bits_per_value: int
    reference_value: float
    binary_scale_factor: int
    decimal_scale_factor: int
    number_of_values: int
    simple_packing: bool


@dataclass(frozen=True)
class Scan:
    """The messages of one GRIB file and the grid they share."""

    path: str
    grid: Grid
    messages: tuple[Message, ...]


def template(grid: Grid, bits_per_value: int = 16) -> int:
    """A GRIB1 handle on ``grid`` (reduced Gaussian) with simple packing; release it after use."""
    if grid.name[:1] not in {"N", "O"}:
        raise ValueError(f"only reduced Gaussian grids can be written, not {grid.name}")
    n = grid.pl.size // 2
    handle = eccodes.codes_grib_new_from_samples(f"reduced_gg_pl_{_nearest_sample(n)}_grib1")
    if grid.name.startswith("O") or _nearest_sample(n) != n:
        eccodes.codes_set(handle, "N", n)
        eccodes.codes_set(handle, "Nj", 2 * n)
        eccodes.codes_set_array(handle, "pl", grid.pl if grid.name.startswith("N") else octahedral_pl(n))
        eccodes.codes_set(handle, "latitudeOfFirstGridPointInDegrees", float(grid.row_lat[0]))
        eccodes.codes_set(handle, "latitudeOfLastGridPointInDegrees", float(grid.row_lat[-1]))
        eccodes.codes_set(handle, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / float(grid.pl.max()))
    eccodes.codes_set(handle, "bitsPerValue", bits_per_value)
    eccodes.codes_set(handle, "centre", "ecmf")
    eccodes.codes_set(handle, "marsClass", "ea")
    return handle


def _nearest_sample(n: int) -> int:
    shipped = (32, 48, 64, 80, 96, 128, 160, 200, 256, 320, 400, 512, 640, 1024, 1280, 2000)
    return n if n in shipped else 96


class GribWriter:
    """Writes fields to a GRIB1 file on ``grid``; the file appears, complete, only on a clean close.

    Use it as a context manager; on an error the partial file is removed.
    """

    def __init__(self, path: PathLike, grid: Grid, bits_per_value: int = 16) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._base = template(grid, bits_per_value)
        self._out = open(self._partial, "wb")

    def write(self, variable: Variable, time: pd.Timestamp, values: np.ndarray) -> None:
        """Append one field valid at ``time``."""
        handle = eccodes.codes_clone(self._base)
        try:
            eccodes.codes_set(handle, "paramId", variable.param_id)
            eccodes.codes_set(handle, "dataDate", int(time.strftime("%Y%m%d")))
            eccodes.codes_set(handle, "dataTime", int(time.strftime("%H%M")))
            eccodes.codes_set_values(handle, np.asarray(values, dtype=np.float64))
            eccodes.codes_write(handle, self._out)
        finally:
            eccodes.codes_release(handle)

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
    path: PathLike, grid: Grid, fields: Iterable[tuple[Variable, pd.Timestamp, np.ndarray]], bits_per_value: int = 16
) -> Path:
    """Write ``(variable, valid time, values)`` fields to a GRIB1 file, atomically."""
    with GribWriter(path, grid, bits_per_value) as writer:
        for variable, time, values in fields:
            writer.write(variable, time, values)
    return writer.path


def _valid_time(handle: int) -> np.datetime64:
    date = eccodes.codes_get(handle, "validityDate")
    hhmm = eccodes.codes_get(handle, "validityTime")
    text = f"{date // 10000:04d}-{date // 100 % 100:02d}-{date % 100:02d}T{hhmm // 100:02d}:{hhmm % 100:02d}"
    return np.datetime64(text, "ns")


def _message(handle: int, offset: int) -> Message:
    simple = eccodes.codes_get(handle, "packingType") == "grid_simple" and not eccodes.codes_get(handle, "bitmapPresent")
    return Message(
        offset=offset,
        length=int(eccodes.codes_get(handle, "totalLength")),
        param_id=int(eccodes.codes_get(handle, "paramId")),
        valid_time=_valid_time(handle),
        data_offset=int(eccodes.codes_get(handle, "offsetBeforeData")),
        bits_per_value=int(eccodes.codes_get(handle, "bitsPerValue")),
        reference_value=float(eccodes.codes_get(handle, "referenceValue")),
        binary_scale_factor=int(eccodes.codes_get(handle, "binaryScaleFactor")),
        decimal_scale_factor=int(eccodes.codes_get(handle, "decimalScaleFactor")),
        number_of_values=int(eccodes.codes_get(handle, "numberOfValues")),
        simple_packing=simple,
    )


def scan(path: PathLike) -> Scan:
    """Read the headers of every message in ``path``.

    Raises
    ------
    InputError
        The file is missing, empty, not GRIB, truncated, has bytes outside any
        message, or mixes grids.
    """
    source = str(path)
    if not os.path.isfile(source):
        raise InputError(source, "file not found")
    size = os.path.getsize(source)
    messages: list[Message] = []
    grid: Grid | None = None
    covered = 0
    with open(source, "rb") as stream:
        while True:
            try:
                handle = eccodes.codes_grib_new_from_file(stream)
            except Exception as exc:  # ecCodes raises PrematureEndOfFileError, DecodingError, ...
                raise InputError(source, f"truncated or corrupt GRIB message after byte {covered}: {exc}") from exc
            if handle is None:
                break
            try:
                offset = int(eccodes.codes_get(handle, "offset"))
                message_grid = grid_from_handle(handle, source)
                if grid is None:
                    grid = message_grid
                elif message_grid != grid:
                    raise InputError(source, f"mixes grids {grid.name} and {message_grid.name}")
                messages.append(_message(handle, offset))
                covered += messages[-1].length
            finally:
                eccodes.codes_release(handle)
    if grid is None:
        raise InputError(source, "not a GRIB file: no GRIB message found" if size else "empty file")
    if covered != size:
        raise InputError(source, f"{size - covered} of {size} bytes are not inside any GRIB message (truncated or corrupt)")
    return Scan(source, grid, tuple(messages))


@contextmanager
def _mapped(path: str) -> Iterator[mmap.mmap]:
    with open(path, "rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        yield mapped


def unpack_simple(buffer: memoryview | bytes, message: Message) -> Float32Array:
    """Unpack a simple-packed message from its bytes, as ecCodes does: ``(X * 2**E + R) * 10**-D``."""
    n, bits = message.number_of_values, message.bits_per_value
    start = message.data_offset
    if bits == 0:
        packed = np.zeros(n, dtype=np.float64)
    elif bits in _FAST_BITS:
        packed = np.frombuffer(buffer, dtype=_FAST_BITS[bits], count=n, offset=start).astype(np.float64)
    elif bits == 24:
        raw = np.frombuffer(buffer, dtype=np.uint8, count=3 * n, offset=start).reshape(n, 3).astype(np.uint32)
        packed = ((raw[:, 0] << 16) | (raw[:, 1] << 8) | raw[:, 2]).astype(np.float64)
    else:
        raise ValueError(f"no fast path for {bits} bits per value")
    scale = 2.0**message.binary_scale_factor
    packed *= scale
    packed += message.reference_value
    packed *= 10.0 ** (-message.decimal_scale_factor)
    return packed.astype(np.float32)


def _fast(message: Message) -> bool:
    return message.simple_packing and (message.bits_per_value in _FAST_BITS or message.bits_per_value in (0, 24))


def decode(path: PathLike, messages: Iterable[Message], workers: int | None = None) -> Float32Array:
    """Decode ``messages`` of the file at ``path`` into a ``(message, point)`` float32 array."""
    chosen = list(messages)
    if not chosen:
        raise ValueError("no messages to decode")
    out = np.empty((len(chosen), chosen[0].number_of_values), dtype=np.float32)
    source = str(path)
    with _mapped(source) as mapped:
        view = memoryview(mapped)

        def one(index: int) -> None:
            message = chosen[index]
            body = view[message.offset : message.offset + message.length]
            if _fast(message):
                out[index] = unpack_simple(body, message)
                return
            handle = eccodes.codes_new_from_message(bytes(body))
            try:
                values = eccodes.codes_get_values(handle)
                if eccodes.codes_get(handle, "bitmapPresent"):  # points the bitmap leaves out are missing
                    values[values == eccodes.codes_get(handle, "missingValue")] = np.nan
                out[index] = values
            finally:
                eccodes.codes_release(handle)

        try:
            with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
                list(pool.map(one, range(len(chosen))))
        finally:
            view.release()
    return out


def variable_of(message: Message, source: str) -> Variable:
    """The ERA variable a message holds."""
    try:
        return BY_PARAM_ID[message.param_id]
    except KeyError:
        raise InputError(source, f"unexpected GRIB parameter paramId={message.param_id}") from None
