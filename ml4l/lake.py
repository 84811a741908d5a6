"""The data lake: where every input and product lives, under one root that may be any fsspec URL.

Layout (relative to the root)::

    raw/ERA_sfc/sfc_unstructured_YYYY_MM.grib        hourly sp msl u10 v10 t2m d2m skt
    raw/ERA_skin/sfc_skin_unstructured_YYYY_MM.grib  hourly aluvp aluvd alnip alnid istl1 istl2 sd fal
    raw/climate.v015/climate.v015.grib               constants, climate V15
    raw/climate.v020/climate.v020.grib               constants, climate V20
    raw/monthlyLakes/clake_MM.grib                   lake cover of calendar month MM
    raw/saltLakes/saltlake.grib                      saline-lake fraction
    raw/MODIS/aquaDay_errorGTE03K_04km_YYYY-MM-DD.{tif,nc}   daily Aqua-day LST and view time
    raw/<usecase>/...                                a use case's own inputs (:meth:`Lake.usecase_raw`)
    era/timevar.zarr                                 ERA time-variable fields, (time, cell)
    era/constants.zarr                               ERA constants, (cell) and (month, cell)
    era/_statistics/YYYY-MM.json                     statistics of a month that passed the plausibility check
    joined/year=YYYY/month=MM/part-0.parquet         a joined month (MODIS pixels matched to ERA cells)
    joined/_staging/YYYY-MM-<run>/                   a month's staged day parts, while its join runs
    ml/<name>/{train,validation,test}.parquet        an ML-ready set, and its ml/<name>/normalisation.json
    predictions/<model>/YYYY-MM.zarr                 a model's predictions of a month
    quarantine/<dataset>/<key>.json                  why ``dataset``/``key`` is quarantined
    quarantine/<dataset>/<key>.rejected              a product that failed validation, kept for inspection
    status/monthly/YYYY-MM.json                      written last by a month's pipeline, once valid
    mlflow/mlflow.db, mlflow/artifacts/              the default MLflow store (a local lake only)
    reports/gx/                                      the Great Expectations context and its Data Docs
    <usecase>/...                                    a use case's products (:meth:`Lake.usecase`): gapfill, downscale, tiles, da

Every path is built by a method of :class:`Lake`; no other module joins paths onto the root
(``tests/test_lake_paths.py`` greps for it). A method given ``"*"`` for a name returns the glob
pattern of all such paths.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import io
import os
import posixpath
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ml4l.errors import InputError
from ml4l.types import Month

T = TypeVar("T")

LAKE_ENV = "ML4L_LAKE"
LAKE_PARTS = (
    "raw",
    "era",
    "joined",
    "ml",
    "predictions",
    "quarantine",
    "status",
    "mlflow",
    "reports",
    "gapfill",
    "downscale",
    "tiles",
    "da",
)
"""Top-level directories of a lake; a root with none of them is not a lake."""
PLATFORM_PARTS = frozenset({"raw", "era", "joined", "ml", "predictions", "quarantine", "status", "mlflow", "reports"})
"""The platform's own top-level directories: no use case writes its products there."""
_USECASE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DEFAULT_ROOT = "./lake"


def resolve_root(root: str | None = None) -> str:
    """The lake root: ``root`` if given, else ``$ML4L_LAKE``, else ``./lake``.

    Local roots, ``file://`` URLs included, become absolute paths; other URLs are kept.
    """
    chosen = root or os.environ.get(LAKE_ENV) or DEFAULT_ROOT
    if chosen.startswith("file://"):
        chosen = chosen.removeprefix("file://")
    return os.path.abspath(chosen) if "://" not in chosen else chosen.rstrip("/")


# ---- transient faults, retried at the I/O call ----

TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.EAGAIN})
"""OS errors that a second try may not meet. ``ENOSPC`` (disk full) is not one: it fails at once."""


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an object-store client attached to ``exc`` (aiohttp ``status``, botocore ``response``), if any."""
    for name in ("status", "status_code", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return value if isinstance(value, int) else None
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a fault worth retrying.

    Transient: I/O errors (``EIO``), timeouts, dropped connections and object-store
    5xx answers. Everything else (bad input, bad configuration, bugs, a full disk)
    fails the same way again and is not.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (TimeoutError, ConnectionError)):
            return True
        if isinstance(current, OSError) and current.errno in TRANSIENT_ERRNOS:
            return True
        status = _http_status(current)
        if status is not None and status >= 500:
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    Try ``k`` (from 0) waits a uniform random time in ``[0, min(max_delay, base_delay * 2**k)]``;
    after ``attempts`` tries the last fault is raised. At a 20% fault rate eight tries
    leave one call in 0.2**8 = 4e6 failing.
    """

    attempts: int = 8
    base_delay: float = 0.02
    max_delay: float = 1.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))


IO_RETRY = RetryPolicy()
_jitter = random.Random()  # only spreads retry timing; no result depends on it


def retry_io(call: Callable[..., T], *args: Any, policy: RetryPolicy = IO_RETRY, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, retried on :func:`is_transient` faults as ``policy`` says; other errors raise at once."""
    for attempt in range(policy.attempts):
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if attempt + 1 == policy.attempts or not is_transient(exc):
                raise
            time.sleep(policy.delay(attempt, _jitter))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def naming(path: str) -> Iterator[None]:
    """Add ``path`` to an ``OSError`` that lacks it (a failed ``write`` names no file), e.g. ``No space left on device``."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise type(exc)(exc.errno, exc.strerror, path) from exc
        raise


class RetryingFile:
    """A file object whose reads, writes and seeks are retried on transient faults.

    A failed write or read is retried from the position it started at, so a
    partial write is overwritten, not duplicated. Other OS errors name the file.
    """

    def __init__(self, handle: Any, path: str) -> None:
        self._handle = handle
        self._path = path

    def _at_position(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self._handle, name)
        start = retry_io(self._handle.tell) if self._handle.seekable() else None

        def attempt() -> Any:
            if start is not None and self._handle.tell() != start:
                self._handle.seek(start)
            return method(*args, **kwargs)

        with naming(self._path):
            return retry_io(attempt)

    def read(self, *args: Any, **kwargs: Any) -> Any:
        return self._at_position("read", *args, **kwargs)

    def read1(self, *args: Any, **kwargs: Any) -> Any:
        return self._at_position("read1", *args, **kwargs)

    def readinto(self, *args: Any, **kwargs: Any) -> Any:
        return self._at_position("readinto", *args, **kwargs)

    def write(self, *args: Any, **kwargs: Any) -> Any:
        return self._at_position("write", *args, **kwargs)

    def seek(self, *args: Any, **kwargs: Any) -> Any:
        return retry_io(self._handle.seek, *args, **kwargs)

    def flush(self) -> Any:
        with naming(self._path):
            return retry_io(self._handle.flush)

    def close(self) -> None:
        with naming(self._path):
            self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._handle)

    def __enter__(self) -> RetryingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RetryingFileSystem:
    """An fsspec filesystem whose every call (``open``, ``mv``, ``rm``, ``glob``, ...) retries transient faults.

    Only the failing call is repeated, not the task around it: a month's hundreds
    of calls complete at a fault rate that would fail a whole-task retry every time.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, policy: RetryPolicy = IO_RETRY) -> None:
        self.inner = fs
        self.policy = policy

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        """The file, binary; in text mode a text layer over the retrying binary file, so retries see whole bytes."""
        text = "b" not in mode
        encoding, newline = kwargs.pop("encoding", "utf-8"), kwargs.pop("newline", None)
        with naming(path):
            handle = RetryingFile(retry_io(self.inner.open, path, mode + "b" if text else mode, policy=self.policy, **kwargs), path)
        return io.TextIOWrapper(handle, encoding=encoding, newline=newline) if text else handle

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        return functools.partial(retry_io, attribute, policy=self.policy)


def _usecase_folder(name: str) -> str:
    if not _USECASE_NAME.match(name) or name in PLATFORM_PARTS:
        raise ValueError(f"a use case's folder is a plain lower-case name, not one of the platform's folders: got {name!r}")
    return name


@dataclass(frozen=True)
class Lake:
    """Paths of the lake under ``root`` (a local path or an fsspec URL)."""

    root: str

    @classmethod
    def at(cls, root: str | None = None) -> Lake:
        """The lake at ``root``, resolved as :func:`resolve_root` does."""
        return cls(resolve_root(root))

    @property
    def fs(self) -> Any:
        """The filesystem the lake lives on, each call retried on transient faults (:class:`RetryingFileSystem`)."""
        return RetryingFileSystem(fsspec.core.url_to_fs(self.root)[0])

    @property
    def is_local(self) -> bool:
        """Whether the lake is on the local filesystem (ecCodes and GDAL read it in place)."""
        return isinstance(fsspec.core.url_to_fs(self.root)[0], LocalFileSystem)

    def require(self) -> Lake:
        """This lake, if its root is a lake directory; else an :class:`~ml4l.errors.InputError` saying what it is."""
        if self.is_local:
            root = Path(self.root)
            if not root.exists():
                raise InputError(self.root, "no such lake: the directory does not exist")
            if not root.is_dir():
                raise InputError(self.root, "not a lake: it is a file, not a directory")
            if not any((root / part).is_dir() for part in LAKE_PARTS):
                raise InputError(self.root, f"not a lake: none of {', '.join(p + '/' for p in LAKE_PARTS)} is inside")
        elif not any(self.fs.exists(self.path(part)) for part in LAKE_PARTS):
            raise InputError(self.root, f"not a lake: none of {', '.join(p + '/' for p in LAKE_PARTS)} is inside")
        return self

    def has_zarr(self, path: str) -> bool:
        """Whether a Zarr 3 array or group is at ``path`` (its ``zarr.json`` is there)."""
        return bool(self.fs.exists(f"{path}/zarr.json"))

    def path(self, *parts: str) -> str:
        """A path under the root, in the root's own form (plain path or URL).

        The primitive of the named locations below: other modules call those, never this
        (``tests/test_lake_paths.py``); tests may.
        """
        return posixpath.join(self.root, *parts)

    def era_sfc(self, month: Month) -> str:
        """Hourly surface fields of ``month``."""
        return self.path("raw", "ERA_sfc", f"sfc_unstructured_{month.replace('-', '_')}.grib")

    def era_skin(self, month: Month) -> str:
        """Hourly skin fields of ``month``."""
        return self.path("raw", "ERA_skin", f"sfc_skin_unstructured_{month.replace('-', '_')}.grib")

    def climate(self, version: int) -> str:
        """Constant fields of climate version 15 or 20."""
        name = f"climate.v{version:03d}"
        return self.path("raw", name, f"{name}.grib")

    def lake_cover(self, calendar_month: int) -> str:
        """Lake cover of calendar month 1-12."""
        return self.path("raw", "monthlyLakes", f"clake_{calendar_month:02d}.grib")

    def saline_lakes(self) -> str:
        """Saline-lake fraction."""
        return self.path("raw", "saltLakes", "saltlake.grib")

    def modis(self, day: str, extension: str = "tif") -> str:
        """MODIS Aqua-day LST of ``day`` (``YYYY-MM-DD``)."""
        return self.path("raw", "MODIS", f"aquaDay_errorGTE03K_04km_{day}.{extension}")

    @property
    def sample_record(self) -> str:
        """Written by the sample writer only: which synthetic Earth made the raw MODIS (a real lake has none)."""
        return self.path("raw", "sample.json")

    @property
    def era_timevar(self) -> str:
        """The Zarr store of ERA time-variable fields."""
        return self.path("era", "timevar.zarr")

    @property
    def era_constants(self) -> str:
        """The Zarr store of ERA constants."""
        return self.path("era", "constants.zarr")

    @property
    def raw(self) -> str:
        """The raw inputs' folder."""
        return self.path("raw")

    @property
    def modis_folder(self) -> str:
        """The folder of the raw MODIS files (daily grids and NASA's HDF tiles)."""
        return self.path("raw", "MODIS")

    def modis_file(self, name: str) -> str:
        """The raw MODIS file ``name`` (a NASA granule name, or a glob pattern)."""
        return self.path("raw", "MODIS", name)

    def era_statistics(self, month: str) -> str:
        """The statistics of ``month``, recorded once it passed the plausibility check."""
        return self.path("era", "_statistics", f"{month}.json")

    def joined_month(self, month: str) -> str:
        """The directory of a joined month, ``joined/year=YYYY/month=MM``."""
        year, mm = ("*", "*") if month == "*" else month.split("-")
        return self.path("joined", f"year={year}", f"month={mm}")

    def joined_table(self, month: str) -> str:
        """The Parquet file of a joined month."""
        return posixpath.join(self.joined_month(month), "part-0.parquet")

    def joined_staging(self, name: str) -> str:
        """A join run's staging directory ``name`` (``YYYY-MM-<run>``), under ``joined/_staging``."""
        return self.path("joined", "_staging", name)

    def ml_ready(self, name: str) -> str:
        """The directory of the ML-ready set ``name``."""
        return self.path("ml", name)

    def ml_split(self, name: str, split: str) -> str:
        """One split (``train``, ``validation``, ``test``) of the ML-ready set ``name``."""
        return self.path("ml", name, f"{split}.parquet")

    def ml_normalisation(self, name: str) -> str:
        """The features, statistics and split definition of the ML-ready set ``name``."""
        return self.path("ml", name, "normalisation.json")

    def predictions(self, model: str) -> str:
        """The predictions' directory of ``model``."""
        return self.path("predictions", model)

    def prediction(self, model: str, month: str) -> str:
        """The predictions of ``model`` for ``month``."""
        return self.path("predictions", model, f"{month}.zarr")

    def quarantine_record(self, dataset: str, key: str) -> str:
        """Why ``dataset``/``key`` is quarantined (present only while it is)."""
        return self.path("quarantine", dataset, f"{key}.json")

    def rejected(self, dataset: str, key: str) -> str:
        """Where a product of ``dataset``/``key`` that failed validation is kept for inspection."""
        return self.path("quarantine", dataset, f"{key}.rejected")

    def status_record(self, month: str) -> str:
        """The completion record of ``month``, written last by its pipeline."""
        return self.path("status", "monthly", f"{month}.json")

    @property
    def reports(self) -> Path:
        """Where the Great Expectations context and its Data Docs live: ``<lake>/reports``, a local cache for a remote lake."""
        if self.is_local:
            return Path(self.root) / "reports"
        return Path(os.environ.get("TMPDIR", "/tmp")) / "ml4l-reports" / self.root.replace("://", "_").replace("/", "_")

    @property
    def mlflow_folder(self) -> Path:
        """The default MLflow store's folder (``mlflow.db``), on a local lake only."""
        if not self.is_local:
            raise ValueError(f"the lake {self.root} is not a local folder: give an MLflow tracking URI (the ml4l-mlflow-tracking block)")
        return Path(self.root) / "mlflow"

    @property
    def mlflow_artifacts(self) -> str:
        """Where MLflow experiments created for this lake keep their artifacts: a ``file://`` URI or the lake's own URL."""
        if self.is_local:
            return (Path(self.root) / "mlflow" / "artifacts").resolve().as_uri()
        return self.path("mlflow", "artifacts")

    def usecase(self, name: str, *parts: str) -> str:
        """A path under use case ``name``'s own top-level folder (``gapfill``, ``downscale``, ``tiles``, ``da``).

        The door for every product of a use case: its layout module names the files
        under it. ``name`` is a plain lower-case name and not one of the platform's folders.
        """
        return self.path(_usecase_folder(name), *parts)

    def usecase_raw(self, name: str, *parts: str) -> str:
        """A path under ``raw/<name>``: the inputs of use case ``name`` in their downloaded forms."""
        return self.path("raw", _usecase_folder(name), *parts)

    def local(self, path: str) -> str:
        """A local file with the content of ``path``: the path itself, or a cached copy of a remote file."""
        if self.is_local:
            return path
        return fsspec.open_local(f"simplecache::{path}")

    def _lock_directory(self) -> Path:
        """Lock files: ``<root>/.locks`` for a local lake, else a local directory keyed by the root (per machine only)."""
        if self.is_local:
            directory = Path(self.root) / ".locks"
        else:
            directory = Path(os.environ.get("TMPDIR", "/tmp")) / "ml4l-locks" / self.root.replace("://", "_").replace("/", "_")
        retry_io(directory.mkdir, parents=True, exist_ok=True)
        return directory

    @contextlib.contextmanager
    def _flock(self, name: str, operation: int) -> Iterator[None]:
        path = self._lock_directory() / f"{name}.lock"
        with retry_io(open, path, "a") as handle:
            fcntl.flock(handle, operation)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the exclusive lock ``name`` of this lake (an OS file lock, freed if the holder dies).

        Lock files live under ``<root>/.locks`` for a local lake, else in a local
        directory keyed by the root: a remote lake is locked per machine only.
        """
        with self._flock(name, fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[None]:
        """Hold a shared writer's lock ``name``: many writers at once, but :meth:`no_writer` sees them."""
        with self._flock(name, fcntl.LOCK_SH):
            yield

    def no_writer(self, name: str) -> bool:
        """Whether no process holds :meth:`writing` or :meth:`lock` of ``name`` (probed without waiting)."""
        return not self._held(self._lock_directory() / f"{name}.lock")

    @staticmethod
    def _held(path: Path) -> bool:
        if not path.exists():
            return False
        with retry_io(open, path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    @contextlib.contextmanager
    def claim(self, token: str) -> Iterator[str]:
        """Mark ``token`` (the suffix of a run's temporaries) as owned by a live process until the block ends.

        The claim is an OS file lock, so it ends when its process dies, however it dies;
        :meth:`is_live` tells a sweeper whether the owner of some debris still runs.
        """
        path = self._lock_directory() / "live" / f"{token}.lock"
        retry_io(path.parent.mkdir, exist_ok=True)
        with retry_io(open, path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield token
            finally:
                path.unlink(missing_ok=True)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def is_live(self, token: str) -> bool:
        """Whether the process that claimed ``token`` (:meth:`claim`) still holds it."""
        return self._held(self._lock_directory() / "live" / f"{token}.lock")

    def _forget_claim(self, token: str) -> None:
        (self._lock_directory() / "live" / f"{token}.lock").unlink(missing_ok=True)

    def swap_lock(self, target: str) -> str:
        """The name of the lock every swap of ``target`` into place holds (:meth:`replace_whole`)."""
        relative = posixpath.relpath(target, self.root) if target.startswith(self.root) else target
        return "swap-" + relative.replace("/", "~")

    def remove_stale_staging(self, target: str) -> list[str]:
        """Remove what a dead :meth:`replace_whole` of ``target`` left; returns the removed paths.

        Temporaries of a live run (its claim held) are kept. A retired old version whose
        swap was killed before the new one moved in is moved back, so ``target`` is never lost.
        """
        fs = self.fs
        parent, name = target.rsplit("/", 1)
        removed = []
        with self.lock(self.swap_lock(target)):
            for path in sorted(fs.glob(f"{parent}/.{name}.old-*")) + sorted(fs.glob(f"{parent}/.{name}.tmp-*")):
                token = path.rsplit("-", 1)[-1]
                if self.is_live(token):
                    continue
                if ".old-" in path.rsplit("/", 1)[-1] and not fs.exists(target):
                    self._rename(path, target)  # killed mid-swap: the old version is the current one
                else:
                    fs.rm(path, recursive=True)
                    removed.append(path)
                self._forget_claim(token)
        return removed

    @contextlib.contextmanager
    def replace_whole(self, target: str, validate: Callable[[str], object] | None = None, rejected: str | None = None) -> Iterator[str]:
        """Yield a hidden staging path beside ``target``; on success validate it, then swap it in for ``target``.

        ``validate(staging)`` runs on the finished staging; if it raises, ``target`` is
        untouched and the staging is kept at ``rejected`` (when given, replacing an older
        rejected version) for inspection. The swap holds ``target``'s swap lock: the old
        ``target`` is moved aside, the new one moved in, then the old one removed, so
        ``target`` is never half-written and concurrent swaps never collide. Readers skip
        the hidden names (``.`` prefix). On failure ``target`` is untouched and the staging
        removed. The staging is claimed (:meth:`claim`), so sweepers leave it alone while this runs.
        """
        fs = self.fs
        parent, name = target.rsplit("/", 1)
        token = uuid.uuid4().hex[:12]
        staging = f"{parent}/.{name}.tmp-{token}"
        with self.claim(token):
            fs.makedirs(parent, exist_ok=True)
            try:
                yield staging
                if validate is not None:
                    try:
                        validate(staging)
                    except Exception as exc:
                        if rejected is not None and not is_transient(exc) and fs.exists(staging):
                            self._set_aside(staging, rejected)
                        raise
                with self.lock(self.swap_lock(target)):
                    retired = None
                    if fs.exists(target):
                        retired = f"{parent}/.{name}.old-{token}"
                        self._rename(target, retired)
                    self._rename(staging, target)
                    if retired is not None:
                        fs.rm(retired, recursive=True)
            finally:
                if fs.exists(staging):
                    fs.rm(staging, recursive=True)

    def _rename(self, source: str, destination: str) -> None:
        """Move ``source`` to a free ``destination``: one atomic ``rename`` on a local lake.

        Not ``fs.mv``: locally it is ``shutil.move``, which answers a failed rename by copying
        (half a copy after a fault) and moves *into* a destination that exists.
        """
        if self.is_local:
            retry_io(os.rename, source, destination)
        else:
            self.fs.mv(source, destination, recursive=True)

    def _set_aside(self, staging: str, rejected: str) -> None:
        fs = self.fs
        with self.lock(self.swap_lock(rejected)):
            if fs.exists(rejected):
                fs.rm(rejected, recursive=True)
            fs.makedirs(rejected.rsplit("/", 1)[0], exist_ok=True)
            self._rename(staging, rejected)

    def sweep_partials(self, store: str) -> list[str]:
        """Remove the ``*.partial`` chunks a killed Zarr write left in ``store``, unless a writer of it is alive.

        Writers hold :meth:`writing` of :meth:`writer_lock` while they write; returns the removed paths.
        """
        if not self.no_writer(self.writer_lock(store)):
            return []
        partials = sorted(self.fs.glob(f"{store}/**/*.partial"))
        for path in partials:
            self.fs.rm(path)
        return partials

    def writer_lock(self, store: str) -> str:
        """The shared lock that writers of the Zarr ``store`` hold (:meth:`writing`), so sweepers spare their chunks."""
        return "write-" + self.swap_lock(store).removeprefix("swap-")


@dataclass(frozen=True)
class Debris:
    """A temporary left in the lake: a run's staging, a retired version, a partial Zarr chunk or status record."""

    path: str
    kind: str
    live: bool
    """Whether its owner still runs (then it is work in progress, not debris to sweep)."""


def find_debris(lake: Lake) -> list[Debris]:
    """Every temporary in the lake, marked live when its owning run still holds its claim or lock.

    Kinds: ``staging`` (``.NAME.tmp-*`` of :meth:`Lake.replace_whole`), ``retired``
    (``.NAME.old-*``), ``join-staging`` (``joined/_staging/*``), ``partial-chunk``
    (Zarr ``*.partial``) and ``status-tmp`` (``status/monthly/*.json.tmp``).
    """
    fs = lake.fs
    found: list[Debris] = []
    parents = [lake.path("era"), lake.path("ml"), lake.path("joined", "year=*"), lake.path("predictions", "*")]
    for parent in parents:
        for kind, marker in (("staging", "tmp"), ("retired", "old")):
            for path in sorted(fs.glob(f"{parent}/.*.{marker}-*")):
                found.append(Debris(path, kind, lake.is_live(path.rsplit("-", 1)[-1])))
    for path in sorted(fs.glob(lake.path("joined", "_staging", "*"))):
        found.append(Debris(path, "join-staging", lake.is_live(path.rsplit("-", 1)[-1])))
    for store in [*fs.glob(lake.path("era", "*.zarr")), *fs.glob(lake.path("predictions", "*", "*.zarr"))]:
        live = not lake.no_writer(lake.writer_lock(store))
        found += [Debris(path, "partial-chunk", live) for path in sorted(fs.glob(f"{store}/**/*.partial"))]
    for path in sorted(fs.glob(lake.path("status", "monthly", "*.json.tmp"))):
        month = path.rsplit("/", 1)[-1].removesuffix(".json.tmp")
        found.append(Debris(path, "status-tmp", not lake.no_writer(f"month-{month}")))
    return found


@dataclass(frozen=True)
class RawListing:
    """What a raw folder holds besides the files a month is read from."""

    unexpected: tuple[str, ...]
    """Files that match no input name of the folder (``x (1).grib``, ``x_b.grib``, ``x.GRIB``): never read."""

    def lines(self) -> list[str]:
        return [f"unexpected file, not read: {path}" for path in self.unexpected]


def _comparable(name: str) -> str:
    """A file name as a copy of it would look: lower case, without `` (1)``, ``_b``, ``-copy`` before the suffix."""
    stem, _, suffix = name.lower().rpartition(".")
    for copy_mark in (r" \(\d+\)$", r"[ _-](copy|b|\d)$"):
        stem = re.sub(copy_mark, "", stem)
    return f"{stem}.{suffix}"


def era_raw_listing(lake: Lake, month: Month) -> RawListing:
    """Check the raw ERA folders of ``month``: list the unexpected files, refuse a second file for the month.

    Raises
    ------
    InputError
        Naming both files, when a folder holds another file that is the month's input
        under another name (a copy: ``(1)``, ``_b``, upper case).
    """
    unexpected = []
    for expected in (lake.era_sfc(month), lake.era_skin(month)):
        folder, name = expected.rsplit("/", 1)
        pattern = re.compile(re.sub(r"\d{4}_\d{2}", r"\\d{4}_\\d{2}", re.escape(name)) + "$")
        for path in sorted(lake.fs.ls(folder, detail=False)) if lake.fs.isdir(folder) else []:
            found = path.rsplit("/", 1)[-1]
            if pattern.match(found):
                continue
            if _comparable(found) == _comparable(name):
                raise InputError(path, f"a second file for {month} beside {expected}: remove one of them")
            unexpected.append(path)
    return RawListing(tuple(unexpected))
