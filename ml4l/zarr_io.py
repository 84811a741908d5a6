"""Zarr stores of the lake, their I/O retried at the call: each chunk or metadata document read, written or deleted is
retried on transient faults (:func:`ml4l.lake.is_transient`), with :data:`STORE_RETRY`'s backoff.

Retrying a whole array operation instead would redo every chunk of it: at a 20% fault rate, a read of 24
chunks would succeed once in 200 tries. Open every store of the lake through :func:`zarr_store`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore, LocalStore, WrapperStore

from ml4l.lake import RetryPolicy, is_transient

T = TypeVar("T")
STORE_RETRY = RetryPolicy(attempts=16)
"""A local store's write is two calls (the key written aside, then renamed): at a 20% fault rate a try succeeds
0.8**2 = 64% of the time, and sixteen tries leave one write in 1e7 failing (eight, as :data:`ml4l.lake.IO_RETRY`: 1 in 3600)."""
_jitter = random.Random()  # only spreads retry timing; no result depends on it


class RetryingStore(WrapperStore[Store]):
    """A store whose reads, writes and deletes are retried on transient faults, one key at a time; listings are not."""

    async def _retried(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        for attempt in range(STORE_RETRY.attempts):
            try:
                return await call(*args)
            except Exception as exc:
                if attempt + 1 == STORE_RETRY.attempts or not is_transient(exc):
                    raise
                await asyncio.sleep(STORE_RETRY.delay(attempt, _jitter))
        raise AssertionError("unreachable")

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        return await self._retried(self._store.get, key, prototype, byte_range)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(key, prototype, byte_range) for key, byte_range in key_ranges)))

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)

    async def exists(self, key: str) -> bool:
        return await self._retried(self._store.exists, key)

    async def set(self, key: str, value: Buffer) -> None:
        await self._retried(self._store.set, key, value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        await self._retried(self._store.set_if_not_exists, key, value)

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:
        await asyncio.gather(*(self.set(key, value) for key, value in values))

    async def delete(self, key: str) -> None:
        await self._retried(self._store.delete, key)


def zarr_store(path: str, read_only: bool = False) -> RetryingStore:
    """The Zarr store at ``path`` (a local folder, or an object-store URL), its I/O retried at each call."""
    inner: Store = FsspecStore.from_url(path, read_only=read_only) if "://" in path else LocalStore(path, read_only=read_only)
    return RetryingStore(inner)
