"""Helpers shared by tests and benchmarks: corrupt sample inputs the way real ones go wrong, write large random sets, compare lakes."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import eccodes
import numpy as np
import pyarrow as pa
import pandas as pd
import pyarrow.parquet as pq
import xarray as xr

from ml4l.config import JoinConfig
from ml4l.usecases.lst.dataset import SHARD_ROWS, TARGET
from ml4l.join import join_month, read_joined
from ml4l.lake import Lake


def rewrite(path: str, keep: Callable[[int, int], bool]) -> None:
    """Rewrite a GRIB file keeping the messages for which ``keep(index, handle)`` holds."""
    kept = []
    with open(path, "rb") as stream:
        index = 0
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            if keep(index, handle):
                kept.append(eccodes.codes_get_message(handle))
            eccodes.codes_release(handle)
            index += 1
    Path(path).write_bytes(b"".join(kept))


def change_values(path: str, short_name: str, change: Callable[[np.ndarray], np.ndarray], first_only: bool = False) -> None:
    """Rewrite a GRIB file with ``change`` applied to the values of every ``short_name`` field.

    NaN values are written as missing points of a bitmap, as ERA5 does for undefined points.
    """
    out = []
    done = False
    with open(path, "rb") as stream:
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            if eccodes.codes_get(handle, "shortName") == short_name and not (first_only and done):
                values = change(eccodes.codes_get_values(handle))
                if np.isnan(values).any():
                    eccodes.codes_set(handle, "bitmapPresent", 1)
                    values = np.where(np.isnan(values), eccodes.codes_get(handle, "missingValue"), values)
                eccodes.codes_set_values(handle, values)
                done = True
            out.append(eccodes.codes_get_message(handle))
            eccodes.codes_release(handle)
    Path(path).write_bytes(b"".join(out))


def append_first_message(path: str) -> None:
    """Duplicate the file's first field (the same variable and hour twice)."""
    with open(path, "rb") as stream:
        handle = eccodes.codes_grib_new_from_file(stream)
        first = eccodes.codes_get_message(handle)
        eccodes.codes_release(handle)
    with open(path, "ab") as out:
        out.write(first)


def write_random_ml_ready(lake: Lake, name: str, shards: int, features: int) -> int:
    """Write ``ml/<name>/train.parquet`` of random rows, ``shards`` row groups of SHARD_ROWS; returns the feature bytes."""
    names = [f"f{i}" for i in range(features)]
    directory = Path(lake.path("ml", name))
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(directory / "train.parquet", pa.schema([(n, pa.float32()) for n in [*names, TARGET]])) as writer:
        for _ in range(shards):
            columns = rng.normal(size=(features + 1, SHARD_ROWS)).astype(np.float32)
            writer.write_table(pa.table(dict(zip([*names, TARGET], columns, strict=True))), row_group_size=SHARD_ROWS)
    (directory / "normalisation.json").write_text(json.dumps({"features": names}))
    return shards * SHARD_ROWS * features * 4


def assert_equals_uninterrupted(lake: Lake, ingested: Lake, months: list[str], join: JoinConfig) -> None:
    """``lake``'s joined months and ERA store equal the library's own join of ``ingested``, and no staging is left."""
    for month in months:
        join_month(ingested, month, join)
        pd.testing.assert_frame_equal(read_joined(lake, month), read_joined(ingested, month))
    got, want = xr.open_zarr(lake.era_timevar), xr.open_zarr(ingested.era_timevar)
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values)
    root = Path(lake.root)
    assert not [*root.rglob(".*.tmp-*"), *root.rglob(".*.old-*"), *(root / "joined" / "_staging").glob("*")]


# ---- fault injection: transient I/O errors, a full disk, a SIGKILL at a chosen call ----


class FaultInjector:
    """Raise ``OSError(errno)`` on a seeded share of the I/O calls on paths under ``root``.

    The calls are the lake's own: ``open`` (builtins, which fsspec's local files use),
    ``os.rename``/``os.replace`` (fsspec's ``mv``, the commit of a Zarr chunk), reads and writes
    of fsspec's local files, each chunk or metadata read and write of Zarr's local store (done in
    Python), and ``os.open`` of files, ``os.pread``/``os.preadv`` (the GRIB decoder's reads). ``reports/`` is
    spared (Great Expectations' own files, not the lake's data), as are calls ``where(path)`` rejects.
    C libraries reading files themselves (GDAL, netCDF, HDF4) and pages of a memory map see no
    faults. ``calls`` and ``faults`` count what happened, ``faulted`` names the paths hit.
    """

    def __init__(self, root: str, rate: float, seed: int, error: int = errno.EIO, where: Callable[[str], bool] | None = None) -> None:
        self.root = os.path.abspath(root) + os.sep
        self.rate = rate
        self.random = random.Random(seed)
        self.error = error
        self.where = where or (lambda path: True)
        self.calls = 0
        self.faults = 0
        self.faulted: set[str] = set()
        self._guard = threading.Lock()
        self._patches: list[tuple[object, str, object]] = []

    def _hit(self, path: object) -> None:
        if not isinstance(path, (str, os.PathLike)):
            return
        name = os.path.abspath(os.fspath(path))
        if not name.startswith(self.root) or name.startswith(self.root + "reports") or not self.where(name):
            return
        with self._guard:
            self.calls += 1
            fault = self.random.random() < self.rate
            self.faults += fault
        if fault:
            self.faulted.add(name)
            raise OSError(self.error, os.strerror(self.error), name)

    def _patch(self, owner: object, name: str, replacement: Callable[..., object]) -> None:
        self._patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def __enter__(self) -> FaultInjector:
        import builtins

        import zarr.storage._local as zarr_local
        from fsspec.implementations.local import LocalFileOpener

        real_open, real_rename, real_replace = builtins.open, os.rename, os.replace
        real_read, real_write = LocalFileOpener.read, LocalFileOpener.write
        real_get, real_put = zarr_local._get, zarr_local._put
        real_os_open, real_pread, real_preadv = os.open, os.pread, os.preadv

        def faulty_open(file: object, *args: object, **kwargs: object) -> object:
            self._hit(file)
            return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

        def faulty_rename(source: object, destination: object, *args: object, **kwargs: object) -> None:
            self._hit(destination)
            real_rename(source, destination, *args, **kwargs)  # type: ignore[arg-type]

        def faulty_replace(source: object, destination: object, *args: object, **kwargs: object) -> None:
            self._hit(destination)
            real_replace(source, destination, *args, **kwargs)  # type: ignore[arg-type]

        def faulty_read(opener: LocalFileOpener, *args: object, **kwargs: object) -> object:
            self._hit(opener.path)
            return real_read(opener, *args, **kwargs)

        def faulty_write(opener: LocalFileOpener, *args: object, **kwargs: object) -> object:
            self._hit(opener.path)
            return real_write(opener, *args, **kwargs)

        def faulty_get(path: Path, *args: object, **kwargs: object) -> object:
            self._hit(path)
            return real_get(path, *args, **kwargs)

        def faulty_put(path: Path, *args: object, **kwargs: object) -> object:
            self._hit(path)
            return real_put(path, *args, **kwargs)

        def faulty_os_open(path: object, *args: object, **kwargs: object) -> int:
            if not os.path.isdir(path):  # type: ignore[arg-type]  # a file's; not shutil.rmtree's walk of directories
                self._hit(path)
            return real_os_open(path, *args, **kwargs)  # type: ignore[arg-type]

        def by_descriptor(real: Callable[..., object]) -> Callable[..., object]:
            def faulty(descriptor: int, *args: object, **kwargs: object) -> object:
                self._hit(os.readlink(f"/proc/self/fd/{descriptor}"))
                return real(descriptor, *args, **kwargs)

            return faulty

        self._patch(builtins, "open", faulty_open)
        self._patch(zarr_local, "_get", faulty_get)
        self._patch(zarr_local, "_put", faulty_put)
        self._patch(os, "open", faulty_os_open)
        self._patch(os, "pread", by_descriptor(real_pread))
        self._patch(os, "preadv", by_descriptor(real_preadv))
        self._patch(os, "rename", faulty_rename)
        self._patch(os, "replace", faulty_replace)
        self._patch(LocalFileOpener, "read", faulty_read)
        self._patch(LocalFileOpener, "write", faulty_write)
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches.clear()


def kill_at(point: str, watched: str) -> None:
    """From now on, SIGKILL this process at ``point`` of a stage writing under ``watched``.

    ``first-write``: the first file opened for writing under ``watched``, or the first file Zarr's
    local store commits there (the rename of its ``*.partial``, which then stays behind);
    ``swap``: the rename that moves a hidden staging directory into place (after the old version was moved aside);
    ``call``: the entry to the function ``watched`` names (``module:Class.method``), for writes no file
    hook sees (MLflow's SQLite registry).
    """
    import builtins

    real_open, real_rename, real_replace = builtins.open, os.rename, os.replace

    def under_watched(path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(os.path.abspath(watched))

    def open_or_die(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if under_watched(file) and any(c in mode for c in "wax+"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    def replace_or_die(source: object, destination: object, *args: object, **kwargs: object) -> None:
        if os.fspath(source).endswith(".partial") and under_watched(destination):  # type: ignore[arg-type]
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(source, destination, *args, **kwargs)  # type: ignore[arg-type]

    def rename_or_die(source: object, destination: object, *args: object, **kwargs: object) -> None:
        if ".tmp-" in os.path.basename(os.fspath(source)) and under_watched(destination):  # type: ignore[arg-type]
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename(source, destination, *args, **kwargs)  # type: ignore[arg-type]

    if point == "first-write":
        builtins.open = open_or_die  # type: ignore[assignment]
        os.replace = replace_or_die
    elif point == "swap":
        os.rename = rename_or_die  # type: ignore[assignment]
    elif point == "call":
        import importlib

        module, qualified = watched.split(":")
        *path, name = qualified.split(".")
        owner: object = importlib.import_module(module)
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL))
    else:
        raise ValueError(f"unknown kill point {point!r}")


def run_killed(code: str, point: str, watched: str, timeout: float = 120.0) -> None:
    """Run ``code`` in a fresh Python with :func:`kill_at` armed; assert it died of SIGKILL."""
    prelude = (f"import ml4l, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import corpus; "  # ml4l first: it binds sqlite3
               f"corpus.kill_at({point!r}, {watched!r})\n")
    finished = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=timeout)
    assert finished.returncode == -signal.SIGKILL, f"not killed at {point} (rc {finished.returncode}): {finished.stderr[-2000:]}"


def lake_files(root: str | Path, under: str) -> dict[str, bytes]:
    """Every file under ``root/under`` (hidden ones included) by relative path, with its bytes."""
    base = Path(root)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted((base / under).rglob("*")) if p.is_file()}


def december_from_january(lake: Lake) -> None:
    """A third month for the ML-ready split, as the ``joined_lake`` fixture makes it: January shifted back 31 days."""
    december = read_joined(lake, "2019-01")
    december["time"] = december["time"] - pd.Timedelta(days=31)
    target = Path(lake.path("joined", "year=2018", "month=12"))
    target.mkdir(parents=True)
    december.to_parquet(target / "part-0.parquet", index=False)


def lake_outputs(lake: Lake) -> dict[str, bytes]:
    """The joined months and ML-ready sets, with the lake's own root written as ``<lake>`` (summaries name their path)."""
    files = {**lake_files(lake.root, "joined"), **lake_files(lake.root, "ml")}
    return {name: data.replace(lake.root.encode(), b"<lake>") for name, data in files.items()}


def assert_no_debris(lake: Lake) -> None:
    """No temporaries, retired versions, staged parts or partial chunks anywhere in the lake."""
    from ml4l.lake import find_debris

    root = Path(lake.root)
    assert find_debris(lake) == []
    assert not [*root.rglob(".*.tmp-*"), *root.rglob(".*.old-*"), *root.rglob("*.partial"), *(root / "joined" / "_staging").glob("*")]


def swap_labels(path: str, first: int, second: int) -> None:
    """Rewrite a GRIB file with the parameter ids ``first`` and ``second`` swapped: each field under the other's name."""
    out = []
    with open(path, "rb") as stream:
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            param = eccodes.codes_get(handle, "paramId")
            if param in (first, second):
                eccodes.codes_set(handle, "paramId", second if param == first else first)
            out.append(eccodes.codes_get_message(handle))
            eccodes.codes_release(handle)
    Path(path).write_bytes(b"".join(out))
