"""The lake's raw MODIS folder: which files hold a day, duplicates, files that are not MODIS granules.

Recognised names (anything else is *unexpected*: listed in the month's report, never read):

- NASA granules ``MYD11A1.A2019032.h18v04.061.2019034123456.hdf``, one per (product, tile, day);
- AppEEARS layers ``MYD11A1.061_LST_Day_1km_doy2019032_aid0001.tif``; the LST layer is the
  granule, its ``QC_Day`` and ``Day_view_time`` siblings are read with it;
- AppEEARS NetCDF ``MYD11A1.061_1km_aid0001.nc``, whose days are read from its time axis;
- the seed's ``aquaDay_errorGTE03K_04km_2019-02-01.tif`` (or ``.nc``): one granule, which may
  be written in both encodings; the GeoTIFF is read and the NetCDF listed as not read.

Two recognised files for the same granule key and day (a re-downloaded tile, two seed
files of one day) are an error naming both. Several tiles of one day are combined.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.readers.modis import read_modis, read_modis_blocks
from ml4l.readers.modis.day import QC_CLASSES, name_date

_NASA = re.compile(r"^(M[OY]D11A1)\.A\d{7}\.(h\d{2}v\d{2})\.\d{3}\.\d{13}\.hdf$")
_APPEEARS_TIF = re.compile(r"^(M[OY]D11A1)\.\d{3}_(\w+?)_doy\d{7}_aid(\d{4})\.tif$")
_APPEEARS_NC = re.compile(r"^(M[OY]D11A1)\.\d{3}_\w+?_aid(\d{4})\.nc$")
_SEED = re.compile(r"^((aqua|terra)(Day|Night)_\w*?_\d{4}-\d{2}-\d{2})\.(tif|nc)$")
_GRANULE_LAYERS = ("LST_Day_1km", "LST_Night_1km")
_SEED_PREFERENCE = ("tif", "nc")


@dataclass(frozen=True)
class Granule:
    """A file that holds one granule: its key (what makes it unique for a day) and its days."""

    path: str
    key: tuple[str, ...]
    days: tuple[str, ...]


@dataclass
class ModisFolder:
    """The raw MODIS folder, classified."""

    granules: list[Granule] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    """Files that are no recognised MODIS granule or layer."""
    not_read: list[str] = field(default_factory=list)
    """Seed granules also present in a preferred encoding."""

    def holds(self, day: str) -> bool:
        """Whether any granule holds ``day``."""
        return any(day in granule.days for granule in self.granules)

    def files_of(self, day: str) -> list[str]:
        """The files holding ``day``, by name.

        Raises
        ------
        InputError
            When two files hold the same granule for ``day``, naming both.
        """
        seen: dict[tuple[str, ...], str] = {}
        for granule in self.granules:
            if day not in granule.days:
                continue
            if granule.key in seen:
                first = seen[granule.key]
                raise InputError(
                    granule.path,
                    f"duplicates {posixpath.basename(first)} for {day}: both hold {' '.join(granule.key)}; remove one",
                )
            seen[granule.key] = granule.path
        return sorted(seen.values())


def scan_folder(lake: Lake) -> ModisFolder:
    """Classify every file of ``raw/MODIS``."""
    folder = ModisFolder()
    directory = lake.modis_folder
    if not lake.fs.exists(directory):
        return folder
    seeds: dict[str, list[str]] = defaultdict(list)
    for path in sorted(lake.fs.ls(directory, detail=False)):
        path = str(path)
        name = posixpath.basename(path)
        if lake.fs.isdir(path):
            folder.unexpected.append(path)
        elif found := _NASA.match(name):
            folder.granules.append(Granule(path, (found[1], found[2]), _named_day(path)))
        elif found := _APPEEARS_TIF.match(name):
            if found[2] in _GRANULE_LAYERS:  # other layers (QC, view time, emissivity) are read with it or unused
                folder.granules.append(Granule(path, (found[1], f"aid{found[3]}", found[2]), _named_day(path)))
        elif found := _APPEEARS_NC.match(name):
            folder.granules.append(Granule(path, (found[1], f"aid{found[2]}"), _netcdf_days(lake, path)))
        elif found := _SEED.match(name):
            seeds[found[1]].append(path)
        else:
            folder.unexpected.append(path)
    for paths in seeds.values():
        paths.sort(key=lambda p: _SEED_PREFERENCE.index(p.rsplit(".", 1)[1]))
        platform = _SEED.match(posixpath.basename(paths[0]))
        assert platform is not None
        folder.granules.append(Granule(paths[0], (f"{platform[2]}{platform[3]}",), _named_day(paths[0])))
        folder.not_read += paths[1:]
    folder.not_read.sort()
    return folder


def _named_day(path: str) -> tuple[str, ...]:
    named = name_date(path)
    return (named.isoformat(),) if named else ()


def _netcdf_days(lake: Lake, path: str) -> tuple[str, ...]:
    from ml4l.readers.modis.netcdf import _days

    try:
        with xr.open_dataset(lake.local(path), engine="h5netcdf", decode_times=False) as ds:
            return tuple(d.isoformat() for d in _days(ds, path))
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read NetCDF: {exc}") from exc


@dataclass
class DayRead:
    """One MODIS day of the lake: its pixels and how they were found."""

    data: xr.Dataset
    parts: list[xr.Dataset]
    """The day as each file gives it, before :func:`combine`."""
    files: list[str]
    dates_from_name: list[str]
    """Files with no date inside, dated by their name."""


def read_day(lake: Lake, day: str, max_lst_error_k: int | None = 3, folder: ModisFolder | None = None) -> DayRead | None:
    """Every granule of ``day`` in the lake, combined; ``None`` when the day has no file."""
    folder = folder or scan_folder(lake)
    files = folder.files_of(day)
    if not files:
        return None
    datasets = []
    with _local_copies(lake, files) as local:
        for path, copy in zip(files, local, strict=True):
            datasets += [d for d in read_modis(copy, max_lst_error_k=max_lst_error_k, source=path) if d.attrs["date"] == day]
    if not datasets:
        raise InputError(files[0], f"holds no data for {day}")
    return DayRead(
        combine(datasets),
        datasets,
        files,
        sorted({d.attrs["source"] for d in datasets if d.attrs["date_source"] == "name"}),
    )


def read_day_blocks(
    lake: Lake, day: str, rows: int, max_lst_error_k: int | None = 3, folder: ModisFolder | None = None
) -> Iterator[DayRead]:
    """:func:`read_day` in blocks of ``rows`` rows of pixels (:func:`~ml4l.readers.modis.read_modis_blocks`), each
    a :class:`DayRead` of its own pixels and ``qc_counts``, for a day held by one file; a day combined from
    several files (tiles, which may overlap) comes whole, as one. Nothing when the day has no file.
    """
    folder = folder or scan_folder(lake)
    files = folder.files_of(day)
    if len(files) != 1:
        found = read_day(lake, day, max_lst_error_k, folder) if files else None
        yield from [found] if found is not None else []
        return
    blocks = 0
    with _local_copies(lake, files) as (copy,):
        for data in read_modis_blocks(copy, rows=rows, max_lst_error_k=max_lst_error_k, source=files[0]):
            if data.attrs["date"] == day:
                blocks += 1
                yield DayRead(data, [data], files, [files[0]] if data.attrs["date_source"] == "name" else [])
    if not blocks:
        raise InputError(files[0], f"holds no data for {day}")


@contextmanager
def _local_copies(lake: Lake, paths: list[str]) -> Iterator[list[str]]:
    """``paths`` on the local disk, with the AppEEARS siblings beside them under their own names."""
    if lake.is_local:
        yield paths
        return
    directory = tempfile.mkdtemp(prefix="ml4l-modis-")
    try:
        wanted = set(paths)
        for path in paths:  # AppEEARS layers of the same request and day
            if (found := _APPEEARS_TIF.match(posixpath.basename(path))) is not None:
                prefix = posixpath.basename(path).split(f"_{found[2]}_")[0]
                suffix = posixpath.basename(path).split(f"_{found[2]}_")[1]
                wanted |= {str(p) for p in lake.fs.glob(posixpath.join(posixpath.dirname(path), f"{prefix}_*_{suffix}"))}
        for path in sorted(wanted):
            lake.fs.get(path, os.path.join(directory, posixpath.basename(path)))
        yield [os.path.join(directory, posixpath.basename(p)) for p in paths]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def combine(datasets: list[xr.Dataset]) -> xr.Dataset:
    """One day from several files (tiles), in order of their source; a pixel at the same
    latitude and longitude (to 1e-6 degrees) as an earlier one is dropped.

    Raises
    ------
    InputError
        When the files are of different days or platforms.
    """
    ordered = sorted(datasets, key=lambda d: d.attrs["source"])
    for name in ("date", "platform"):
        values = sorted({d.attrs[name] for d in ordered})
        if len(values) > 1:
            raise InputError(ordered[0].attrs["source"], f"combined with files of another {name}: {', '.join(values)}")
    if len(ordered) == 1:
        return ordered[0]
    merged = xr.concat(ordered, dim="pixel", combine_attrs="drop")
    key = np.stack([np.round(merged["latitude"].to_numpy() * 1e6), np.round(merged["longitude"].to_numpy() * 1e6)])
    _, first = np.unique(key, axis=1, return_index=True)
    merged = merged.isel(pixel=np.sort(first))
    footprints = np.array([d.attrs["footprint"] for d in ordered])
    merged.attrs = {
        **ordered[0].attrs,
        "source": ", ".join(d.attrs["source"] for d in ordered),
        "product": ", ".join(sorted({d.attrs["product"] for d in ordered})),
        "footprint": (
            float(footprints[:, 0].min()),
            float(footprints[:, 1].max()),
            float(footprints[:, 2].min()),
            float(footprints[:, 3].max()),
        ),
        "date_source": ", ".join(sorted({d.attrs["date_source"] for d in ordered})),
        "view_time_source": ", ".join(sorted({d.attrs["view_time_source"] for d in ordered})),
        "qc_counts": {c: sum(d.attrs["qc_counts"][c] for d in ordered) for c in QC_CLASSES},
        "duplicates_dropped": int(sum(d.sizes["pixel"] for d in ordered) - merged.sizes["pixel"]),
    }
    return merged
