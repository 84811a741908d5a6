"""Decode GRIB messages into float32 values, in the file's point order or the grid's canonical order.

Simple-packed messages of 0, 8, 16, 24 or 32 bits per value without a bitmap are
unpacked by ml4l from the message's bytes with ecCodes' own arithmetic,
``(X * 2**E + R) * 10**-D`` in double precision with ecCodes' powers, so that the
values are ecCodes' bit for bit before the cast to float32. Every other message
(a bitmap, another bit width, second-order, complex, CCSDS, JPEG, PNG or IEEE
packing, ...) goes to ecCodes: never refused. Missing points (bitmap, or the
missing value of a packing that manages them) are NaN.

Messages are decoded in parallel threads (ecCodes and the Numba kernel release the GIL), as many
as ``ML4L_THREADS`` (:mod:`ml4l.threads`); an error in a worker names the file, the message, its
offset and the key at fault. :func:`for_each_decoded` hands each field to its consumer in the
thread that decoded it, from a buffer that thread reuses, so a file streams through in constant memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import eccodes
import numba
import numpy as np

from ml4l.errors import InputError
from ml4l.lake import retry_io
from ml4l.readers.grib.scan import Message
from ml4l.threads import cores_given
from ml4l.types import Float32Array, PathLike

_FAST_WIDTHS = frozenset({8, 16, 24, 32})


def codes_power(exponent: int, base: int) -> float:
    """``base ** exponent`` computed as ecCodes does (repeated multiplication or division).

    ``10.0 ** -2`` and ecCodes' ``1 / 10 / 10`` can differ in the last bit; the decoded
    values must be ecCodes' own.
    """
    if exponent == 0:
        return 1.0
    if exponent == 1:
        return float(base)
    result = 1.0
    for _ in range(-exponent if exponent < 0 else 0):
        result /= base
    for _ in range(exponent if exponent > 0 else 0):
        result *= base
    return result


@numba.njit(nogil=True, cache=True, inline="always")
def _word(raw: np.ndarray, i: int, width: int) -> np.uint32:
    if width == 2:
        return (np.uint32(raw[2 * i]) << 8) | np.uint32(raw[2 * i + 1])
    if width == 1:
        return np.uint32(raw[i])
    if width == 3:
        return (np.uint32(raw[3 * i]) << 16) | (np.uint32(raw[3 * i + 1]) << 8) | np.uint32(raw[3 * i + 2])
    return (np.uint32(raw[4 * i]) << 24) | (np.uint32(raw[4 * i + 1]) << 16) | (np.uint32(raw[4 * i + 2]) << 8) | np.uint32(raw[4 * i + 3])


@numba.njit(nogil=True, cache=True)
def _unpack(raw: np.ndarray, bits: int, scale: float, reference: float, decimal: float, order: np.ndarray, out: np.ndarray) -> None:
    """``out[order[i]] = float32((X_i * scale + reference) * decimal)`` for big-endian ``bits``-bit ``X_i``
    (``order`` empty: in file order); in double precision, operation for operation as ecCodes."""
    width = bits // 8
    if order.size == 0:
        for i in range(out.size):
            out[i] = np.float32((np.float64(_word(raw, i, width)) * scale + reference) * decimal)
    else:
        for i in range(out.size):
            out[order[i]] = np.float32((np.float64(_word(raw, i, width)) * scale + reference) * decimal)


_IN_FILE_ORDER = np.empty(0, dtype=np.int64)


def unpack_simple(
    buffer: bytes | memoryview, message: Message, out: np.ndarray | None = None, order: np.ndarray | None = None
) -> Float32Array:
    """Unpack a simple-packed message without bitmap from its bytes, as ecCodes does.

    The values go to ``out`` (a new array if ``None``), at ``order[i]`` for the
    message's ``i``-th point when ``order`` is given, else in file order.
    """
    n, bits = message.grid.size, message.bits_per_value
    out = np.empty(n, dtype=np.float32) if out is None else out
    if bits == 0:  # a constant field: ecCodes returns the reference value itself
        out[:] = np.float32(message.reference_value)
        return out
    if bits not in _FAST_WIDTHS:
        raise ValueError(f"no own decoder for {bits} bits per value")
    raw = np.frombuffer(buffer, dtype=np.uint8, count=n * bits // 8, offset=message.data_offset)
    scale = codes_power(message.binary_scale_factor, 2)
    decimal = codes_power(-message.decimal_scale_factor, 10)
    _unpack(raw, bits, scale, message.reference_value, decimal, _IN_FILE_ORDER if order is None else order, out)
    return out


def _eccodes_values(body: bytes | memoryview) -> np.ndarray:
    handle = eccodes.codes_new_from_message(body)
    try:
        values = eccodes.codes_get_values(handle)
        if eccodes.codes_get_long(handle, "bitmapPresent"):
            values[eccodes.codes_get_array(handle, "bitmap") == 0] = np.nan
        elif eccodes.codes_is_defined(handle, "missingValueManagementUsed") and eccodes.codes_get_long(
            handle, "missingValueManagementUsed"
        ):
            values[values == eccodes.codes_get_double(handle, "missingValue")] = np.nan
        return values
    finally:
        eccodes.codes_release(handle)


def _read_body(descriptor: int, source: str, message: Message, scratch: bytearray) -> memoryview:
    """The message's bytes, read into ``scratch`` (grown if needed): one buffer per thread, not one per message."""
    if len(scratch) < message.length:
        scratch.extend(bytes(message.length - len(scratch)))
    body = memoryview(scratch)[: message.length]
    read = retry_io(os.preadv, descriptor, [body], message.offset)
    if read != message.length:
        raise message.where(source).error("totalLength", f"the file ends {message.length - read} bytes into the message")
    return body


def _decode_one(descriptor: int, source: str, message: Message, out: np.ndarray, canonical: bool, scratch: bytearray) -> None:
    body = _read_body(descriptor, source, message, scratch)
    n, bits = message.grid.size, message.bits_per_value
    if message.fast and message.data_offset + (n * bits + 7) // 8 > message.length - 4:
        raise message.where(source).error("numberOfValues", f"{n} values of {bits} bits do not fit in the message's {message.length} bytes")
    order = message.layout.order if canonical else None
    if message.fast:
        unpack_simple(body, message, out, order)
        return
    try:
        values = _eccodes_values(body)
    except Exception as exc:  # ecCodes' own errors, from any packing
        raise message.where(source).error("values", f"cannot be decoded ({type(exc).__name__}: {exc})") from exc
    if values.size != message.grid.size:
        raise message.where(source).error(
            "numberOfDataPoints", f"{values.size} values decoded for the {message.grid.size} points of {message.grid.name}"
        )
    if order is not None:
        out[order] = values
    else:
        out[:] = values


class _ThreadScratch(threading.local):
    """Each pool thread's own message bytes and values, reused from one message to the next (no page faults per message)."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.values = np.empty(0, dtype=np.float32)

    def values_for(self, size: int) -> np.ndarray:
        if self.values.size != size:
            self.values = np.empty(size, dtype=np.float32)
        return self.values


def _on_pool(path: PathLike, count: int, task: Callable[[int, str, int, _ThreadScratch], None], workers: int | None) -> None:
    """``task(descriptor, source, index, scratch)`` for each index on ``workers`` threads (default: ML4L_THREADS or
    the CPU affinity); the first error is raised once the tasks already running end, and the others never start."""
    source = str(path)
    if not os.path.isfile(source):
        raise InputError(source, "file not found")
    descriptor = retry_io(os.open, source, os.O_RDONLY)
    scratch = _ThreadScratch()
    pool = ThreadPoolExecutor(max_workers=max(1, workers or cores_given()))
    try:
        for future in [pool.submit(task, descriptor, source, index, scratch) for index in range(count)]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        os.close(descriptor)


def _each(path: PathLike, messages: Sequence[Message], outputs: Sequence[np.ndarray], canonical: bool, workers: int | None) -> None:
    def one(descriptor: int, source: str, index: int, scratch: _ThreadScratch) -> None:
        _decode_one(descriptor, source, messages[index], outputs[index], canonical, scratch.body)

    _on_pool(path, len(messages), one, workers)


def for_each_decoded(
    path: PathLike,
    messages: Sequence[Message],
    consume: Callable[[int, Float32Array], None],
    workers: int | None = None,
    canonical: bool = True,
) -> None:
    """Decode each of ``messages`` on ``workers`` threads and call ``consume(index, values)`` in the thread that decoded it.

    ``values`` is that thread's own buffer, overwritten by its next message: ``consume``
    must use it (encode, copy, reduce) before it returns. Memory stays at one field per
    thread, whatever the number of messages; an error in a decode or in ``consume`` stops
    the messages not yet started and is raised.
    """

    def one(descriptor: int, source: str, index: int, scratch: _ThreadScratch) -> None:
        message = messages[index]
        values = scratch.values_for(message.grid.size)
        _decode_one(descriptor, source, message, values, canonical, scratch.body)
        consume(index, values)

    _on_pool(path, len(messages), one, workers)


def decode(path: PathLike, messages: Iterable[Message], workers: int | None = None, canonical: bool = True) -> Float32Array:
    """Decode ``messages`` of the file at ``path`` into a ``(message, point)`` float32 array.

    All messages must share one grid. ``canonical`` puts the points in the grid's
    canonical order (north to south, west to east), else they stay in the file's order.
    """
    chosen = list(messages)
    if not chosen:
        raise ValueError("no messages to decode")
    first = chosen[0].grid
    for message in chosen[1:]:
        if message.grid != first:
            raise message.where(str(path)).error("grid", f"{message.grid.name} differs from {first.name} of message {chosen[0].number}")
    out = np.empty((len(chosen), first.size), dtype=np.float32)
    _each(path, chosen, list(out), canonical, workers)
    return out


def decode_each(path: PathLike, messages: Sequence[Message], workers: int | None = None, canonical: bool = False) -> list[Float32Array]:
    """Decode each message into its own float32 array (messages may be on different grids)."""
    outputs = [np.empty(m.grid.size, dtype=np.float32) for m in messages]
    _each(path, messages, outputs, canonical, workers)
    return outputs
