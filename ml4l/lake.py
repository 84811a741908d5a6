"""The data lake: where every input and product lives, under one root that may be any fsspec URL.

Layout (relative to the root)::

    raw/ERA_sfc/sfc_unstructured_YYYY_MM.grib        hourly sp msl u10 v10 t2m d2m skt
    raw/ERA_skin/sfc_skin_unstructured_YYYY_MM.grib  hourly aluvp aluvd alnip alnid istl1 istl2 sd fal
    raw/climate.v015/climate.v015.grib               constants, climate V15
    raw/climate.v020/climate.v020.grib               constants, climate V20
    raw/monthlyLakes/clake_MM.grib                   lake cover of calendar month MM
    raw/saltLakes/saltlake.grib                      saline-lake fraction
    raw/MODIS/aquaDay_errorGTE03K_04km_YYYY-MM-DD.{tif,nc}   daily Aqua-day LST and view time
    era/timevar.zarr                                 ERA time-variable fields, (time, cell)
    era/constants.zarr                               ERA constants, (cell) and (month, cell)
    era/_complete/YYYY-MM.json                       written last by a month's ingest
    status/monthly/YYYY-MM.json                      written last by a month's pipeline, once valid
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ml4l.types import Month

LAKE_ENV = "ML4L_LAKE"
DEFAULT_ROOT = "./lake"


def resolve_root(root: str | None = None) -> str:
    """The lake root: ``root`` if given, else ``$ML4L_LAKE``, else ``./lake``.

    Local roots, ``file://`` URLs included, become absolute paths; other URLs are kept.
    """
    chosen = root or os.environ.get(LAKE_ENV) or DEFAULT_ROOT
    if chosen.startswith("file://"):
        chosen = chosen.removeprefix("file://")
    return os.path.abspath(chosen) if "://" not in chosen else chosen.rstrip("/")


@dataclass(frozen=True)
class Lake:
    """Paths of the lake under ``root`` (a local path or an fsspec URL)."""

    root: str

    @classmethod
    def at(cls, root: str | None = None) -> Lake:
        """The lake at ``root``, resolved as :func:`resolve_root` does."""
        return cls(resolve_root(root))

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The filesystem the lake lives on."""
        return fsspec.core.url_to_fs(self.root)[0]

    @property
    def is_local(self) -> bool:
        """Whether the lake is on the local filesystem (ecCodes and GDAL read it in place)."""
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path under the root, in the root's own form (plain path or URL)."""
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
    def era_timevar(self) -> str:
        """The Zarr store of ERA time-variable fields."""
        return self.path("era", "timevar.zarr")

    @property
    def era_constants(self) -> str:
        """The Zarr store of ERA constants."""
        return self.path("era", "constants.zarr")

    def era_month_marker(self, month: Month) -> str:
        """Written last by a successful ingest of ``month``."""
        return self.path("era", "_complete", f"{month}.json")

    def local(self, path: str) -> str:
        """A local file with the content of ``path``: the path itself, or a cached copy of a remote file."""
        if self.is_local:
            return path
        return fsspec.open_local(f"simplecache::{path}")

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the exclusive lock ``name`` of this lake (an OS file lock, freed if the holder dies).

        Lock files live under ``<root>/.locks`` for a local lake, else in a local
        directory keyed by the root: a remote lake is locked per machine only.
        """
        if self.is_local:
            directory = Path(self.root) / ".locks"
        else:
            directory = Path(os.environ.get("TMPDIR", "/tmp")) / "ml4l-locks" / self.root.replace("://", "_").replace("/", "_")
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def remove_stale_staging(self, target: str) -> list[str]:
        """Remove what a killed :meth:`replace_whole` of ``target`` left; returns the removed paths.

        Only safe while holding a lock that keeps other writers of ``target`` out.
        """
        parent, name = target.rsplit("/", 1)
        stale = self.fs.glob(f"{parent}/.{name}.tmp-*") + self.fs.glob(f"{parent}/.{name}.old-*")
        for path in stale:
            self.fs.rm(path, recursive=True)
        return list(stale)

    @contextlib.contextmanager
    def replace_whole(self, target: str) -> Iterator[str]:
        """Yield a hidden staging path beside ``target``; on success swap it in for ``target``.

        The old ``target`` is moved aside, the new one moved in, then the old one
        removed, so ``target`` is never half-written. Readers skip the hidden names
        (``.`` prefix). On failure ``target`` is untouched and the staging removed.
        """
        fs = self.fs
        parent, name = target.rsplit("/", 1)
        staging = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
        fs.makedirs(parent, exist_ok=True)
        try:
            yield staging
            retired = None
            if fs.exists(target):
                retired = f"{parent}/.{name}.old-{uuid.uuid4().hex[:8]}"
                fs.mv(target, retired, recursive=True)
            fs.mv(staging, target, recursive=True)
            if retired is not None:
                fs.rm(retired, recursive=True)
        finally:
            if fs.exists(staging):
                fs.rm(staging, recursive=True)
