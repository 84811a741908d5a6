"""ERA GRIB to Zarr v3: a template store for the whole period, filled month by month with region writes.

Staged as in anemoi-datasets: :func:`create_timevar_store` (init, once), then
:func:`ingest_month` (load, per month, in any order or in parallel), then readers
use :func:`complete_months`. A month's marker file is written after its last
region write and removed before its first, so a month that failed part-way is
never taken as complete, and re-running it overwrites the same region.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ml4l.config import Period
from ml4l.errors import InputError
from ml4l.grib import Message, Scan, decode, scan, variable_of
from ml4l.grids import Grid, grid
from ml4l.lake import Lake
from ml4l.types import Month
from ml4l.variables import CONSTANT, GROUPS, LAKE_COVER, SALINE_LAKE, TIME_VARIABLE, Variable

STORE_FORMAT = 1
# consolidated metadata is an extension of Zarr v3 that zarr-python and xarray read; we rely on it knowingly
warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)
Progress = Callable[[int], None]


def _cf_attrs(variable: Variable) -> dict[str, object]:
    return {"units": variable.units, "long_name": variable.long_name, "grib_paramId": variable.param_id}


def _cell_coords(g: Grid) -> dict[str, tuple[str, np.ndarray, dict[str, str]]]:
    return {
        "latitude": ("cell", g.lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": ("cell", g.lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }


def _store_attrs(g: Grid, period: Period) -> dict[str, object]:
    return {
        "grid": g.name,
        "period_start": period.start,
        "period_end": period.end,
        "days_per_month": period.days if period.days is not None else "all",
        "ml4l_store_format": STORE_FORMAT,
        "Conventions": "CF-1.8",
    }


def create_timevar_store(lake: Lake, grid_name: str, period: Period) -> str:
    """Create the empty time-variable store covering ``period`` (no-op if it already matches).

    Every variable is float32 ``(time, cell)`` in chunks of one hour by all cells,
    the read pattern of the join; unwritten hours read as NaN. Concurrent callers
    are serialised, so only one creates it.
    """
    with lake.lock("era-timevar"):
        return _create_timevar_store(lake, grid_name, period)


def _create_timevar_store(lake: Lake, grid_name: str, period: Period) -> str:
    import dask.array as da

    g = grid(grid_name)
    path = lake.era_timevar
    expected = _store_attrs(g, period)
    if lake.fs.exists(lake.path("era", "timevar.zarr", "zarr.json")):
        found = {k: v for k, v in zarr.open_group(path, mode="r").attrs.asdict().items() if k in expected}
        if found != expected:
            raise InputError(path, f"store exists for {found}, not {expected}: remove it to rebuild for a new period or grid")
        return path
    times = period.hours
    shape, chunks = (len(times), g.size), (1, g.size)
    data_vars = {
        v.name: (("time", "cell"), da.full(shape, np.nan, dtype=np.float32, chunks=chunks), _cf_attrs(v))
        for v in TIME_VARIABLE
    }
    ds = xr.Dataset(data_vars, coords={"time": times, **_cell_coords(g)}, attrs=expected)
    encoding = {v.name: {"chunks": chunks} for v in TIME_VARIABLE}
    encoding["time"] = {"units": "hours since 1970-01-01", "dtype": "int64"}
    ds.to_zarr(path, mode="w-", compute=False, encoding=encoding, zarr_format=3, consolidated=True)
    return path


@dataclass(frozen=True)
class MonthReport:
    """What :func:`ingest_month` wrote."""

    month: Month
    store: str
    hours: int
    variables: int
    files: tuple[str, ...]


def store_period(path: str) -> tuple[Grid, pd.DatetimeIndex]:
    """The grid and hours of the time-variable store at ``path``."""
    ds = xr.open_zarr(path, consolidated=True)
    return grid(str(ds.attrs["grid"])), pd.DatetimeIndex(ds["time"].values)


def _index_messages(scans: list[Scan], store_grid: Grid, month: Month, hours: pd.DatetimeIndex) -> dict[tuple[str, np.datetime64], tuple[Scan, Message]]:
    wanted = set(hours.values)
    index: dict[tuple[str, np.datetime64], tuple[Scan, Message]] = {}
    for found in scans:
        if found.grid != store_grid:
            raise InputError(found.path, f"grid {found.grid.name} does not match the store's grid {store_grid.name}")
        for message in found.messages:
            variable = variable_of(message, found.path)
            key = (variable.name, message.valid_time)
            if message.valid_time not in wanted:
                raise InputError(found.path, f"{variable.name} at {message.valid_time} is not an hour of {month} in the store's period")
            if key in index:
                raise InputError(found.path, f"duplicate field {variable.name} at {message.valid_time}")
            index[key] = (found, message)
    return index


def _check_complete(index: dict[tuple[str, np.datetime64], tuple[Scan, Message]], files: dict[str, str], hours: pd.DatetimeIndex) -> None:
    for group, path in files.items():
        for variable in GROUPS[group]:  # type: ignore[index]
            missing = [t for t in hours.values if (variable.name, t) not in index]
            if len(missing) == len(hours):
                raise InputError(path, f"variable {variable.name} is missing")
            if missing:
                first = pd.Timestamp(missing[0]).isoformat()
                raise InputError(path, f"variable {variable.name} is missing {len(missing)} of {len(hours)} hours, first {first}")


def ingest_month(lake: Lake, month: Month, workers: int | None = None, progress: Progress | None = None) -> MonthReport:
    """Decode the month's ERA_sfc and ERA_skin GRIB files into their region of the store.

    Every file is scanned and checked (grid, variables, hours, duplicates) before
    anything is written.

    Raises
    ------
    InputError
        Naming the file and the problem; the store is left untouched.
    """
    path = lake.era_timevar
    store_grid, store_times = store_period(path)
    files = {"sfc": lake.era_sfc(month), "skin": lake.era_skin(month)}
    hours = store_times[(store_times.strftime("%Y-%m") == month)]
    if hours.empty:
        raise InputError(path, f"month {month} is outside the store's period")
    index = _index_messages([scan(lake.local(f)) for f in files.values()], store_grid, month, hours)
    _check_complete(index, files, hours)

    store = zarr.open_group(path, mode="r+")
    marker = lake.era_month_marker(month)
    if lake.fs.exists(marker):
        lake.fs.rm(marker)
    first = int(np.searchsorted(store_times.values, hours.values[0]))
    for day_start in range(0, len(hours), 24):
        day = hours.values[day_start : day_start + 24]
        region = slice(first + day_start, first + day_start + len(day))
        for group_name in files:
            variable_group = GROUPS[group_name]  # type: ignore[index]
            chosen = [index[(v.name, t)] for v in variable_group for t in day]
            values = decode(lake.local(chosen[0][0].path), [m for _, m in chosen], workers)
            for k, variable in enumerate(variable_group):
                store[variable.name][region] = values[k * len(day) : (k + 1) * len(day)]
        if progress is not None:
            progress(len(day))
    lake.fs.makedirs(marker.rsplit("/", 1)[0], exist_ok=True)
    with lake.fs.open(marker, "w") as out:
        json.dump({"month": month, "hours": len(hours), "files": list(files.values())}, out)
    return MonthReport(month, path, len(hours), len(TIME_VARIABLE), tuple(files.values()))


def complete_months(lake: Lake) -> list[Month]:
    """Months whose ingest finished."""
    pattern = lake.path("era", "_complete", "*.json")
    return sorted(p.rsplit("/", 1)[-1].removesuffix(".json") for p in lake.fs.glob(pattern))


def _constant_fields(found: Scan, variables: tuple[Variable, ...]) -> dict[str, Message]:
    by_name: dict[str, Message] = {}
    for message in found.messages:
        name = variable_of(message, found.path).name
        if name in by_name:
            raise InputError(found.path, f"duplicate field {name}")
        by_name[name] = message
    missing = [v.name for v in variables if v.name not in by_name]
    if missing:
        raise InputError(found.path, f"missing constant fields: {', '.join(missing)}")
    return by_name


def _single_field(lake: Lake, path: str) -> tuple[Grid, np.ndarray]:
    found = scan(lake.local(path))
    if len(found.messages) != 1:
        raise InputError(path, f"expected one field, found {len(found.messages)}")
    return found.grid, decode(lake.local(path), found.messages)[0]


def ingest_constants(lake: Lake, refresh: bool = True) -> str:
    """Write climate V15 and V20 (``<name>_v15``, ``<name>_v20``), the monthly lake cover
    ``clake(month, cell)`` and ``cl_saline(cell)`` to the constants store, replacing it whole
    (:meth:`~ml4l.lake.Lake.replace_whole`); one writer at a time.

    With ``refresh`` False an existing store is kept, so that readers of other
    months never see it swapped.
    """
    with lake.lock("era-constants"):
        lake.remove_stale_staging(lake.era_constants)
        if not refresh and lake.fs.exists(lake.path("era", "constants.zarr", "zarr.json")):
            return lake.era_constants
        return _ingest_constants(lake)


def _ingest_constants(lake: Lake) -> str:
    data_vars: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, object]]] = {}
    grids: dict[str, Grid] = {}
    for version in (15, 20):
        path = lake.climate(version)
        found = scan(lake.local(path))
        grids[path] = found.grid
        fields = _constant_fields(found, CONSTANT)
        values = decode(lake.local(path), [fields[v.name] for v in CONSTANT])
        for k, variable in enumerate(CONSTANT):
            attrs = {**_cf_attrs(variable), "climate_version": version}
            data_vars[f"{variable.name}_v{version}"] = (("cell",), values[k], attrs)
    monthly = []
    for calendar_month in range(1, 13):
        path = lake.lake_cover(calendar_month)
        grids[path], values = _single_field(lake, path)
        monthly.append(values)
    data_vars[LAKE_COVER.name] = (("month", "cell"), np.stack(monthly), _cf_attrs(LAKE_COVER))
    path = lake.saline_lakes()
    grids[path], saline = _single_field(lake, path)
    data_vars[SALINE_LAKE.name] = (("cell",), saline, _cf_attrs(SALINE_LAKE))

    reference_path, reference = next(iter(grids.items()))
    for path, other in grids.items():
        if other != reference:
            raise InputError(path, f"grid {other.name} differs from {reference.name} of {reference_path}")
    ds = xr.Dataset(
        data_vars,
        coords={"month": np.arange(1, 13), **_cell_coords(reference)},
        attrs={"grid": reference.name, "ml4l_store_format": STORE_FORMAT, "Conventions": "CF-1.8"},
    )
    with lake.replace_whole(lake.era_constants) as staging:
        ds.to_zarr(staging, mode="w-", zarr_format=3, consolidated=True)
    return lake.era_constants
