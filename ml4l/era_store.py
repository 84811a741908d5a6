"""ERA GRIB to Zarr v3: a store that grows month by month, each month a region write.

Staged as in anemoi-datasets: :func:`create_timevar_store` (init, once, an empty
time axis from the recipe's first month), then :func:`ingest_month` (load, per
month, in any order, holes included, or in parallel), then readers use
:func:`complete_months`. A month the store does not reach yet extends the time
axis first: a resize of the arrays' metadata, the only step that takes a lock.
Each month has a fixed place on the axis, so the bytes of other months never
change. The store's per-month flags (``_build/complete``) are cleared before a
month's checks and set after its last region write, so a month that failed
part-way is never taken as complete, and re-running it overwrites the same region.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.abc.codec import SupportsSyncCodec
from zarr.codecs import BloscCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import NDBuffer
from zarr.core.sync import sync

from ml4l.config import Period, check_month
from ml4l.errors import InputError
from ml4l.grids import Grid, grid
from ml4l.lake import Lake, era_raw_listing
from ml4l.readers.grib import Message, Scan, decode, for_each_decoded, scan, variable_of
from ml4l.types import Month
from ml4l.variables import CONSTANT, GROUPS, LAKE_COVER, SALINE_LAKE, TIME_VARIABLE, Variable
from ml4l.zarr_io import zarr_store

STORE_FORMAT = 2
_LOCK = "era-timevar"  # held only to extend the time axis; region writes of different months need none
_BUILD, _FLAGS = "_build", "complete"  # per-month completion flags, as anemoi-datasets' _build/flags
# the hourly fields' codec, chosen by measurement (`benchmarks/bench_ingest.py --codecs`, table in the README): Blosc
# LZ4 with byte shuffle writes ~4x faster than zarr's default Zstd per core, reads ~2x faster and stores fewer bytes;
# level 1 made the whole ingest ~15% cheaper than level 5 for ~6% more bytes. A store keeps the codec it was made with
_FIELD_CODEC = BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")
_CHUNK_KEYS = {"name": "default", "separator": "."}


@contextlib.contextmanager
def consolidating() -> Iterator[None]:
    """Writes of consolidated metadata, an extension of Zarr v3 that zarr-python and xarray read: we rely on it
    knowingly, so its warning is silenced here only, never in the importer's global filters."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)
        yield


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
        "first_month": period.start,
        "days_per_month": period.days if period.days is not None else "all",
        "ml4l_store_format": STORE_FORMAT,
        "Conventions": "CF-1.8",
    }


def create_timevar_store(lake: Lake, grid_name: str, period: Period) -> str:
    """Create the empty time-variable store starting at ``period.start`` (no-op if it already matches).

    Every variable is float32 ``(time, cell)`` in chunks of one hour by all cells,
    the read pattern of the join. The time axis starts empty; each ingested month
    extends it (:func:`ingest_month`). Concurrent callers are serialised, so only one creates it.
    """
    with lake.lock(_LOCK):
        return _create_timevar_store(lake, grid_name, period)


def _create_timevar_store(lake: Lake, grid_name: str, period: Period) -> str:
    import dask.array as da

    g = grid(grid_name)
    path = lake.era_timevar
    expected = _store_attrs(g, period)
    if lake.has_zarr(lake.era_timevar):
        found = {k: v for k, v in zarr.open_group(zarr_store(path), mode="r").attrs.asdict().items() if k in expected}
        if found != expected:
            raise InputError(path, f"store exists for {found}, not {expected}: remove it to rebuild for a new first month or grid")
        return path
    shape, chunks = (0, g.size), (1, g.size)
    data_vars = {v.name: (("time", "cell"), da.full(shape, np.nan, dtype=np.float32, chunks=chunks), _cf_attrs(v)) for v in TIME_VARIABLE}
    ds = xr.Dataset(data_vars, coords={"time": pd.DatetimeIndex([], dtype="datetime64[ns]"), **_cell_coords(g)}, attrs=expected)
    # chunk keys "c.<hour>.0", one file each in the variable's folder: zarr's default "c/<hour>/0" makes a folder per
    # hour, and creating it cost as much CPU as writing the chunk (benchmarks/bench_ingest.py); zarr reads either
    encoding: dict[str, dict[str, object]] = {
        v.name: {"chunks": chunks, "compressors": [_FIELD_CODEC], "chunk_key_encoding": _CHUNK_KEYS} for v in TIME_VARIABLE
    }
    # whole days per chunk: a month's times never share a chunk with another month's
    encoding["time"] = {"units": "hours since 1970-01-01", "dtype": "int64", "chunks": (24,)}
    ds.to_zarr(zarr_store(path), mode="w-", compute=False, encoding=encoding, zarr_format=3, consolidated=False)
    flags = zarr.open_group(zarr_store(path), mode="r+", use_consolidated=False).require_group(_BUILD)
    flags.create_array(
        _FLAGS,
        shape=(0,),
        chunks=(1,),
        dtype="uint8",
        fill_value=0,
        dimension_names=["month"],
        attributes={"description": "1 where month first_month + index is completely ingested"},
    )
    with consolidating():
        zarr.consolidate_metadata(zarr_store(path))
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
    """The grid and hours of the time-variable store at ``path`` (months not ingested read as NaN)."""
    ds = xr.open_zarr(zarr_store(path), consolidated=True)
    return grid(str(ds.attrs["grid"])), pd.DatetimeIndex(ds["time"].values)


def store_layout(lake: Lake) -> tuple[Grid, Period]:
    """The grid and the month layout (first month, days per month) of the lake's time-variable store."""
    attrs = zarr.open_group(zarr_store(lake.era_timevar), mode="r").attrs.asdict()
    if attrs.get("ml4l_store_format") != STORE_FORMAT:
        raise InputError(lake.era_timevar, f"store format {attrs.get('ml4l_store_format')} is not {STORE_FORMAT}: remove it to rebuild")
    days = attrs["days_per_month"]
    return grid(str(attrs["grid"])), Period(str(attrs["first_month"]), days=None if days == "all" else int(days))


def _month_index(period: Period, month: Month) -> int:
    return len(period.months_through(month)) - 1


def _check_in_layout(lake: Lake, period: Period, month: Month) -> None:
    if check_month(month) < period.start:
        raise InputError(lake.era_timevar, f"month {month} is before the store's first month {period.start}")


def _extend_to(lake: Lake, period: Period, month: Month) -> None:
    """Resize the time axis (and the month flags) to reach the end of ``month``; only this takes the lock.

    New hours read as NaN until written, so a month skipped is a hole, filled if it
    arrives later. Written to survive a kill part-way: whatever is short is extended
    and the time values of the new hours are rewritten.
    """
    length = period.hours_before(month) + len(period.hours_of(month))
    months = _month_index(period, month) + 1
    with lake.lock(_LOCK):
        group = zarr.open_group(zarr_store(lake.era_timevar), mode="r+", use_consolidated=False)
        axis = [group[v.name] for v in TIME_VARIABLE] + [group["time"]]
        flags = group[f"{_BUILD}/{_FLAGS}"]
        published = zarr.open_group(zarr_store(lake.era_timevar), mode="r").get("time")  # what readers see: consolidated
        shortest = min(a.shape[0] for a in axis)
        if shortest >= length and flags.shape[0] >= months and published is not None and published.shape[0] >= length:
            return
        if shortest < length:
            for array in axis:
                if array.shape[0] < length:
                    array.resize((length, *array.shape[1:]))
            hours = np.concatenate([period.hours_of(m).values for m in period.months_through(month)])
            since_epoch = (hours[shortest:length] - np.datetime64("1970-01-01T00:00")) // np.timedelta64(1, "h")
            axis[-1][shortest:length] = since_epoch.astype(np.int64)
        if flags.shape[0] < months:
            flags.resize((months,))
        with consolidating():
            zarr.consolidate_metadata(zarr_store(lake.era_timevar))


def _set_flag(lake: Lake, period: Period, month: Month, value: int) -> bool:
    """Set the month's completion flag; whether the month is on the time axis."""
    flags = zarr.open_array(zarr_store(lake.era_timevar), path=f"{_BUILD}/{_FLAGS}", mode="r+")
    index = _month_index(period, month)
    if index >= flags.shape[0]:
        return False
    flags[index] = value
    return True


def withdraw_month(lake: Lake, month: Month) -> bool:
    """Mark ``month`` as not ingested (its input failed a check); whether it was complete. Its values stay as they were."""
    if not lake.has_zarr(lake.era_timevar):
        return False
    _, period = store_layout(lake)
    if check_month(month) < period.start:
        return False
    was = month in complete_months(lake)
    _set_flag(lake, period, month, 0)
    return was


def _index_messages(
    scans: list[Scan], store_grid: Grid, month: Month, hours: pd.DatetimeIndex
) -> dict[tuple[str, np.datetime64], tuple[Scan, Message]]:
    wanted = set(hours.values)
    index: dict[tuple[str, np.datetime64], tuple[Scan, Message]] = {}
    for found in scans:
        for message in found.messages:
            if message.grid != store_grid:
                raise message.where(found.path).error("grid", f"{message.grid.name} does not match the store's grid {store_grid.name}")
            variable = variable_of(message, found.path)
            key = (variable.name, message.valid_time)
            if message.valid_time not in wanted:
                raise InputError(found.path, f"{variable.name} at {message.valid_time} is not an hour of {month} in the store")
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

    The month's completion flag is cleared first, so a month whose input fails is
    no longer taken as ingested. Every file is then scanned and checked (grid,
    variables, hours, duplicates) before anything is written; a month the store
    does not reach yet extends its time axis; the flag is set after the last write.

    Raises
    ------
    InputError
        Naming the file and the problem; no value of the store has changed.
    """
    path = lake.era_timevar
    lake.sweep_partials(path)  # chunks a killed ingest left half-written
    store_grid, period = store_layout(lake)
    _check_in_layout(lake, period, month)
    _set_flag(lake, period, month, 0)
    era_raw_listing(lake, month)  # a second copy of the month's file is an error naming both
    files = {"sfc": lake.era_sfc(month), "skin": lake.era_skin(month)}
    hours = period.hours_of(month)
    index = _index_messages([scan(lake.local(f)) for f in files.values()], store_grid, month, hours)
    _check_complete(index, files, hours)

    _extend_to(lake, period, month)
    with lake.writing(lake.writer_lock(path)):  # a sweeper spares the chunks of a live writer
        _write_month(path, period, month, index, hours, workers, progress)
    _set_flag(lake, period, month, 1)
    return MonthReport(month, path, len(hours), len(TIME_VARIABLE), tuple(files.values()))


class _HourChunks:
    """Stores whole one-hour chunks of a ``(time, cell)`` array, encoded with the array's own codecs, through its own store.

    A decoded message is exactly one chunk, so it is encoded and stored as it is, in the
    thread that decoded it: ``array[region] = values`` cost as much again as the encoding
    (selection, copies, an all-NaN check, the codecs on zarr's event loop; profiled for
    ``benchmarks/bench_ingest.py``). The bytes are those zarr writes for the same chunk, and
    the store's ``set`` writes them aside and renames them (``*.partial``), as zarr's own writes do.
    """

    def __init__(self, array: zarr.Array) -> None:
        if array.chunks != (1, array.shape[1]):
            raise ValueError(f"{array.name}: chunks {array.chunks} are not one hour by all cells")
        self._array = array.async_array
        self._spec = self._array.metadata.get_chunk_spec((0, 0), self._array.config, default_buffer_prototype())
        codecs = [codec.evolve_from_array_spec(self._spec) for codec in self._array.metadata.codecs]
        if not all(isinstance(codec, SupportsSyncCodec) for codec in codecs):
            raise ValueError(f"{array.name}: codecs {codecs} cannot encode outside zarr's event loop")
        self._codecs: list[SupportsSyncCodec] = codecs  # type: ignore[assignment]

    def put(self, hour: int, values: np.ndarray) -> None:
        """Store ``values`` (one float32 field, all cells) as the chunk of ``hour``."""
        data: Any = NDBuffer.from_numpy_array(values.reshape(1, -1))
        for codec in self._codecs:
            data = codec._encode_sync(data, self._spec)
        sync((self._array.store_path / self._array.metadata.encode_chunk_key((hour, 0))).set(data))


def _write_month(
    path: str,
    period: Period,
    month: Month,
    index: dict[tuple[str, np.datetime64], tuple[Scan, Message]],
    hours: pd.DatetimeIndex,
    workers: int | None,
    progress: Progress | None,
) -> None:
    """Each day of the month, file by file: the messages decoded on ``workers`` threads, each stored as its hour's chunk."""
    store = zarr.open_group(zarr_store(path), mode="r+", use_consolidated=False)
    chunks = {v.name: _HourChunks(store[v.name]) for v in TIME_VARIABLE}
    first = period.hours_before(month)
    hour_of = {t: first + k for k, t in enumerate(hours.values)}
    days: list[dict[str, list[tuple[str, int, Message]]]] = [{} for _ in range(0, len(hours), 24)]
    for (name, time), (found, message) in index.items():
        days[(hour_of[time] - first) // 24].setdefault(found.path, []).append((name, hour_of[time], message))
    for number, by_file in enumerate(days):
        for source, fields in by_file.items():
            fields.sort(key=lambda field: field[2].offset)  # read each file front to back

            def put(k: int, values: np.ndarray, fields: list[tuple[str, int, Message]] = fields) -> None:
                name, hour, _ = fields[k]
                chunks[name].put(hour, values)

            for_each_decoded(source, [message for _, _, message in fields], put, workers)
        if progress is not None:
            progress(len(hours[number * 24 : (number + 1) * 24]))


def complete_months(lake: Lake) -> list[Month]:
    """Months whose ingest finished, from the store's flags."""
    if not lake.has_zarr(f"{lake.era_timevar}/{_BUILD}/{_FLAGS}"):
        return []
    _, period = store_layout(lake)
    flags = zarr.open_array(zarr_store(lake.era_timevar), path=f"{_BUILD}/{_FLAGS}", mode="r")[...]
    first = pd.Period(period.start, freq="M")
    return [str(first + int(i)) for i in np.flatnonzero(flags)]


def require_ingested(lake: Lake, month: Month) -> None:
    """Raise :class:`InputError` naming the month and the stage unless the ERA ingest of ``month`` completed."""
    if month not in complete_months(lake):
        raise InputError(lake.era_timevar, f"ERA month {month} is not ingested (stage: ERA ingest): ingest it, then re-run this stage")


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
        if not refresh and lake.has_zarr(lake.era_constants):
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
    with lake.replace_whole(lake.era_constants) as staging, consolidating():
        ds.to_zarr(zarr_store(staging), mode="w-", zarr_format=3, consolidated=True)
    return lake.era_constants
