"""ERA x MODIS join: each observed MODIS pixel to its nearest ERA cell, averaged per (hour, cell).

A month is built in three stages, like the ERA store:

1. :func:`join_day` (one per MODIS file, in parallel) assigns each pixel the UTC
   hour nearest its observation, keeps the hours of the month, finds the nearest
   cell, drops matches beyond the threshold and reduces the rest per (hour, cell)
   to mergeable moments (count, sum, sum of squares, distance sum) with the ERA
   features of that hour and cell. It writes them to a hidden staging part.
2. :func:`finalize_month` merges the parts (an hour can take pixels from two
   files), turns moments into mean, std and mean distance and writes the month's
   Parquet in a hidden directory, then swaps it into place.
3. Readers (pyarrow, pandas) skip names starting with ``.`` or ``_``, so they see
   a month whole or not at all.

Files of the days before and after the month are read as well, since a MODIS
day is a local solar day and its UTC hours spill into the neighbouring days.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
import zarr

from ml4l.config import JoinConfig
from ml4l.era_store import require_ingested, store_period
from ml4l.grids import Grid, grid
from ml4l.lake import Lake
from ml4l.nearest import nearest
from ml4l.readers.modis import hours_after_midnight
from ml4l.readers.modis.folder import read_day_blocks, scan_folder
from ml4l.types import FloatArray, IntArray, Month
from ml4l.variables import CONSTANT, LAKE_COVER, SALINE_LAKE, TIME_VARIABLE
from ml4l.zarr_io import zarr_store

_MOMENTS = ("lst_count", "lst_sum", "lst_sumsq", "distance_sum")
_BLOCK_ROWS = 256
"""Rows of a global MODIS day read and matched at once (a GeoTIFF tile row): a full-size day (5400 x 10800) is never decoded whole."""

TARGET_COLUMNS = ("lst", "lst_count", "lst_std", "distance_km")
FEATURE_COLUMNS: tuple[str, ...] = (
    *(v.name for v in TIME_VARIABLE),
    *(f"{v.name}_v15" for v in CONSTANT),
    *(f"{v.name}_v20" for v in CONSTANT),
    LAKE_COVER.name,
    SALINE_LAKE.name,
)
"""Every feature column of a joined month, in order."""


def joined_schema() -> pa.Schema:
    """The Arrow schema of a joined month."""
    return pa.schema(
        [
            pa.field("time", pa.timestamp("ns")),
            pa.field("cell", pa.int32()),
            pa.field("latitude", pa.float64()),
            pa.field("longitude", pa.float64()),
            pa.field("lst", pa.float32()),
            pa.field("lst_count", pa.int32()),
            pa.field("lst_std", pa.float32()),
            pa.field("distance_km", pa.float32()),
            *(pa.field(name, pa.float32()) for name in FEATURE_COLUMNS),
        ]
    )


@dataclass
class JoinCounts:
    """What happened to the pixels whose UTC hour falls in the month being joined.

    ``observed == no_era + beyond_lat + beyond_threshold + matched``; ``matched``
    equals the sum of ``lst_count`` over the month's rows. ``qc_classes`` counts every
    pixel of the files of the month's own days by MODIS QC class, kept or not;
    ``dates_from_name`` lists files with no date inside, ``unexpected_files`` what the
    raw MODIS folder holds that is no MODIS granule, ``not_read`` seed granules also
    there in a preferred encoding.
    """

    files_read: int = 0
    files_missing: int = 0
    observed: int = 0
    no_era: int = 0
    beyond_lat: int = 0
    beyond_threshold: int = 0
    matched: int = 0
    missing_days: list[str] = field(default_factory=list)
    qc_classes: dict[str, int] = field(default_factory=dict)
    dates_from_name: list[str] = field(default_factory=list)
    unexpected_files: list[str] = field(default_factory=list)
    not_read: list[str] = field(default_factory=list)

    def add(self, other: JoinCounts) -> None:
        """Sum the counts; lists become sorted unions (every day lists the folder's unexpected files)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, list):
                setattr(self, f.name, sorted(set(mine) | set(theirs)))
            elif isinstance(mine, dict):
                setattr(self, f.name, {k: mine.get(k, 0) + theirs.get(k, 0) for k in sorted(set(mine) | set(theirs))})
            else:
                setattr(self, f.name, mine + theirs)


@dataclass(frozen=True)
class MonthSummary:
    """What :func:`finalize_month` wrote."""

    month: Month
    path: str
    rows: int
    hours_with_data: int
    empty_hours: int
    mean_distance_km: float
    counts: JoinCounts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- the month's days and the ERA hours they can fill ----


def _store_hours(lake: Lake, month: Month) -> pd.DatetimeIndex:
    require_ingested(lake, month)
    _, times = store_period(lake.era_timevar)
    return times[times.strftime("%Y-%m") == month]


def month_days(lake: Lake, month: Month) -> list[str]:
    """The MODIS days (``YYYY-MM-DD``) whose pixels can fall in the month's ERA hours."""
    hours = _store_hours(lake, month)
    days = pd.DatetimeIndex(sorted(set(hours.normalize())))
    around = days.union(days - pd.Timedelta(days=1)).union(days + pd.Timedelta(days=1))
    return [d.strftime("%Y-%m-%d") for d in around]


# ---- stage 1: one MODIS file ----


@numba.njit(cache=True)
def _accumulate(
    hour: IntArray,
    cell: IntArray,
    lst: np.ndarray,
    distance: FloatArray,
    groups: int,
    head: IntArray,
    link: IntArray,
    out_hour: IntArray,
    out_cell: IntArray,
    count: IntArray,
    total: FloatArray,
    total_sq: FloatArray,
    distance_sum: FloatArray,
) -> int:
    """Add pixels, in order, to the moments of their (hour, cell) group; returns the number of groups.

    ``head[cell]`` is the cell's latest group and ``link`` chains its groups of other hours
    (a few a day). A group's sums take its pixels in the order given, whatever else lies between.
    """
    for p in range(hour.size):
        h, c = hour[p], cell[p]
        s = head[c]
        while s >= 0 and out_hour[s] != h:
            s = link[s]
        if s < 0:
            s = groups
            link[s], head[c] = head[c], s
            out_hour[s], out_cell[s] = h, c
            groups += 1
        value = np.float64(lst[p])
        count[s] += 1
        total[s] += value
        total_sq[s] += value * value
        distance_sum[s] += distance[p]
    return groups


class PixelMoments:
    """Count, sum, sum of squares of LST and distance sum per (hour, cell), from pixels added a block at a
    time: the same moments, to the bit, as one pass over all of them (:func:`reduce_pixels`)."""

    _COLUMNS = ("link", "hour", "cell", "lst_count", "lst_sum", "lst_sumsq", "distance_sum")

    def __init__(self, n_cells: int) -> None:
        self.head = np.full(n_cells, -1, dtype=np.int64)
        self.groups = 0
        self.columns = {name: np.zeros(0, dtype=np.float64 if name in _MOMENTS[1:] else np.int64) for name in self._COLUMNS}

    def add(self, hour: IntArray, cell: IntArray, lst: np.ndarray, distance: FloatArray) -> None:
        """Add pixels (each block in the order of the one pass)."""
        wanted = self.groups + hour.size
        if wanted > self.columns["hour"].size:  # zeroed pages cost nothing until touched
            size = max(wanted, 2 * self.columns["hour"].size)
            for name, old in self.columns.items():
                grown = np.zeros(size, dtype=old.dtype)
                grown[: self.groups] = old[: self.groups]
                self.columns[name] = grown
        c = self.columns
        self.groups = _accumulate(
            np.ascontiguousarray(hour, dtype=np.int64), np.ascontiguousarray(cell, dtype=np.int64), np.ascontiguousarray(lst),
            np.ascontiguousarray(distance, dtype=np.float64), self.groups, self.head, c["link"], c["hour"], c["cell"],
            c["lst_count"], c["lst_sum"], c["lst_sumsq"], c["distance_sum"],
        )  # fmt: skip

    def frame(self) -> pd.DataFrame:
        """The moments, hours ascending, a group's rows in the order of its first pixel."""
        order = np.argsort(self.columns["hour"][: self.groups], kind="stable")
        return pd.DataFrame({name: self.columns[name][: self.groups][order] for name in self._COLUMNS[1:]})


def reduce_pixels(hour: IntArray, cell: IntArray, lst: FloatArray, distance: FloatArray, n_cells: int) -> pd.DataFrame:
    """Count, sum, sum of squares of LST and distance sum per (hour, cell), hours ascending."""
    moments = PixelMoments(n_cells)
    moments.add(hour, cell, lst, distance)
    return moments.frame()


class FeatureReader:
    """ERA features at (hour, cell) from the two Zarr stores."""

    def __init__(self, lake: Lake) -> None:
        self.timevar = zarr.open_group(zarr_store(lake.era_timevar), mode="r")
        _, self.times = store_period(lake.era_timevar)
        constants = zarr.open_group(zarr_store(lake.era_constants), mode="r")
        self.grid: Grid = grid(str(constants.attrs["grid"]))
        self.constants = {
            name: np.asarray(constants[name][...], dtype=np.float32)
            for name in FEATURE_COLUMNS
            if name in constants and name != LAKE_COVER.name
        }
        self.lake_cover = np.asarray(constants[LAKE_COVER.name][...], dtype=np.float32)

    def at(self, hour_index: IntArray, cells: IntArray) -> dict[str, np.ndarray]:
        """Every feature at each (store hour index, cell) pair, reading each variable's hours once."""
        first, last = (int(hour_index.min()), int(hour_index.max()) + 1) if hour_index.size else (0, 0)
        out = {v.name: np.asarray(self.timevar[v.name][first:last])[hour_index - first, cells] for v in TIME_VARIABLE}
        for name, values in self.constants.items():
            out[name] = values[cells]
        out[LAKE_COVER.name] = self.lake_cover[self.times[hour_index].month.to_numpy() - 1, cells]
        return {name: out[name] for name in FEATURE_COLUMNS}


PixelValues = Callable[[FloatArray, FloatArray, str], FloatArray]
"""Values averaged instead of the files' LST, from the matched pixels' latitudes and longitudes and the MODIS day."""


def join_day(lake: Lake, day: str, month: Month, staging: str, config: JoinConfig = JoinConfig()) -> JoinCounts:
    """Join the MODIS files of ``day`` for the hours of ``month``; writes ``<staging>/<day>.parquet``.

    A missing file is counted, not raised: it is a gap in the record. A file that
    cannot be read, or two files holding the same granule, raise
    :class:`~ml4l.errors.InputError` naming them.
    """
    counts, moments = day_moments(lake, day, month, config)
    if moments is not None:
        target = f"{staging}/{day}.parquet"
        lake.fs.makedirs(staging, exist_ok=True)
        with lake.fs.open(target, "wb") as out:
            moments.to_parquet(out, index=False)
    return counts


def day_moments(
    lake: Lake, day: str, month: Month, config: JoinConfig = JoinConfig(), pixel_values: PixelValues | None = None
) -> tuple[JoinCounts, pd.DataFrame | None]:
    """The moments per (hour, cell) of ``day``'s pixels in the hours of ``month``, with the features; ``None``: no file.

    ``pixel_values`` replaces the LST of the matched pixels, e.g. by the synthetic truth
    (:mod:`ml4l.usecases.lst.oracle`): the pixels, hours and cells stay those of the join.
    """
    counts = JoinCounts()
    hours = _store_hours(lake, month)
    own_day = pd.Timestamp(day).strftime("%Y-%m") == month
    folder = scan_folder(lake)
    counts.unexpected_files, counts.not_read = list(folder.unexpected), list(folder.not_read)
    first = pd.Timestamp(f"{month}-01")  # compared as timestamps: a string per pixel costs GBs on a full-size day
    features: FeatureReader | None = None
    pixels = PixelMoments(0)
    for found in read_day_blocks(lake, day, _BLOCK_ROWS, config.max_lst_error_k, folder):
        if features is None:
            features = FeatureReader(lake)
            pixels = PixelMoments(features.grid.size)
            counts.files_read = len(found.files)
        if own_day:
            qc = found.data.attrs["qc_counts"]
            counts.qc_classes = {name: counts.qc_classes.get(name, 0) + qc[name] for name in qc}
            counts.dates_from_name = sorted(set(counts.dates_from_name) | set(found.dates_from_name))
        pixels.add(*_match_pixels(found.data, pd.Timestamp(day), first, features, config, counts, pixel_values))
    if features is None:
        if own_day and pd.Timestamp(day) in set(hours.normalize()):
            counts.files_missing, counts.missing_days = 1, [day]
        return counts, None
    moments = pixels.frame()
    store_hour = moments.pop("hour").to_numpy()
    for name, column in features.at(store_hour, moments["cell"].to_numpy()).items():
        moments[name] = column
    moments.insert(0, "time", features.times[store_hour])
    return counts, moments


def _match_pixels(
    data: xr.Dataset,
    day: pd.Timestamp,
    first: pd.Timestamp,
    features: FeatureReader,
    config: JoinConfig,
    counts: JoinCounts,
    pixel_values: PixelValues | None,
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Store hour index, cell, value and distance of the pixels of ``data`` (a block of a day) that fall in the
    month starting at ``first`` and match a cell; adds the block's pixels to ``counts``."""
    lat, lon = data["latitude"].to_numpy(), data["longitude"].to_numpy()
    lst = data["lst"].to_numpy()
    offset = np.floor(hours_after_midnight(data) + 0.5).astype(np.int64)
    time = day + pd.to_timedelta(offset, unit="h")
    in_month = np.asarray((time >= first) & (time < first + pd.offsets.MonthBegin(1)))
    lat, lon, lst, offset = lat[in_month], lon[in_month], lst[in_month], offset[in_month]
    counts.observed += int(lat.size)

    hour_index = _hour_index(day, offset, features.times)
    keep = hour_index >= 0
    counts.no_era += int((~keep).sum())
    if config.lat_limit is not None:
        within = np.abs(lat) < config.lat_limit
        counts.beyond_lat += int((keep & ~within).sum())
        keep &= within
    cell, distance = nearest(features.grid, lat[keep], lon[keep], config.engine)  # type: ignore[arg-type]
    close = distance <= config.threshold_km
    counts.beyond_threshold += int((~close).sum())
    counts.matched += int(close.sum())
    values = lst[keep][close] if pixel_values is None else pixel_values(lat[keep][close], lon[keep][close], day.strftime("%Y-%m-%d"))
    return hour_index[keep][close], cell[close], values, distance[close]


def _hour_index(day: pd.Timestamp, offset: IntArray, hours: pd.DatetimeIndex) -> IntArray:
    """Position in ``hours`` of ``day + offset`` hours, -1 where the store has no such hour."""
    wanted = (day + pd.to_timedelta(offset, unit="h")).values
    position = np.searchsorted(hours.values, wanted)
    found = position < hours.size
    found[found] = hours.values[position[found]] == wanted[found]
    return np.where(found, position, -1)


# ---- stage 2: the month ----


def staging_path(lake: Lake, month: Month, run: str | None = None) -> str:
    """A fresh hidden directory for a month's staged parts, ``joined/_staging/<month>-<run>``.

    The run token ends the name: whoever writes there holds ``lake.claim(run)``, so
    :func:`sweep_month` leaves it alone while the run lives.
    """
    return lake.joined_staging(f"{month}-{run or uuid.uuid4().hex[:12]}")


def staging_token(staging: str) -> str:
    """The run token of a staging directory made by :func:`staging_path`."""
    return staging.rsplit("-", 1)[-1]


def rejected_path(lake: Lake, month: Month) -> str:
    """Where a joined month that failed validation is kept for inspection (the published month is untouched)."""
    return lake.rejected("joined_month", month)


def discard_staging(lake: Lake, staging: str) -> None:
    """Remove a month's staged parts (after a failed day)."""
    if lake.fs.exists(staging):
        lake.fs.rm(staging, recursive=True)


def sweep_month(lake: Lake, month: Month) -> list[str]:
    """Remove what killed joins of ``month`` left (staged parts, hidden month copies); spares live runs' own."""
    removed = lake.remove_stale_staging(lake.joined_month(month))
    for path in sorted(lake.fs.glob(lake.joined_staging(f"{month}-*"))):
        if not lake.is_live(staging_token(path)):
            discard_staging(lake, path)
            removed.append(path)
    return removed


def merge_moments(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Day parts merged into one row per (time, cell): moments summed, features of the first part."""
    frame = pd.concat(parts, ignore_index=True).sort_values(["time", "cell"], kind="stable", ignore_index=True)
    time = frame["time"].to_numpy().astype("datetime64[ns]").view(np.int64)
    cell = frame["cell"].to_numpy()
    new_key = (time[1:] != time[:-1]) | (cell[1:] != cell[:-1])
    starts = np.flatnonzero(np.r_[True, new_key]) if len(frame) else np.zeros(0, dtype=np.int64)
    merged = frame.iloc[starts].reset_index(drop=True)
    for name in _MOMENTS:
        merged[name] = np.add.reduceat(frame[name].to_numpy(), starts) if len(frame) else frame[name].to_numpy()
    return merged


def finalize_month(
    lake: Lake, month: Month, staging: str, counts: JoinCounts, validate: Callable[[str], object] | None = None
) -> MonthSummary:
    """Merge the staged parts into ``joined/year=YYYY/month=MM/part-0.parquet`` and swap it into place.

    ``validate(directory)`` checks the new month in its hidden directory first: if it
    raises, the published month stays as it was and the new one is kept at
    :func:`rejected_path`. Re-running replaces the month whole; the staging directory is removed.
    """
    g, _ = store_period(lake.era_timevar)
    hours = _store_hours(lake, month)
    fs = lake.fs
    target = lake.joined_month(month)
    parts = sorted(fs.glob(f"{staging}/*.parquet"))
    rows, times_with_data, distances, weights = 0, 0, [], []
    try:
        with lake.replace_whole(target, validate, rejected_path(lake, month)) as hidden:
            fs.makedirs(hidden, exist_ok=True)
            with fs.open(f"{hidden}/part-0.parquet", "wb") as out, _RowGroupWriter(out) as writer:
                for moments in _merged_days(lake, parts, hours):
                    table = _joined_rows(moments, g)
                    writer.write(pa.Table.from_pandas(table, schema=joined_schema(), preserve_index=False))
                    rows += len(table)
                    times_with_data += int(table["time"].nunique())  # days do not share hours
                    distances.append(table["distance_km"].to_numpy())
                    weights.append(table["lst_count"].to_numpy())
            distance, weight = np.concatenate(distances), np.concatenate(weights)
            summary = MonthSummary(
                month=month,
                path=target,
                rows=rows,
                hours_with_data=times_with_data,
                empty_hours=int(len(hours) - times_with_data),
                mean_distance_km=float(np.average(distance, weights=weight)) if rows else float("nan"),
                counts=counts,
            )
            with fs.open(f"{hidden}/_summary.json", "w") as out:
                json.dump(summary.to_dict(), out, indent=2)
    finally:
        discard_staging(lake, staging)
    return summary


_ROW_GROUP_ROWS = 1024 * 1024
"""Rows of a row group of the month's Parquet: pyarrow's default, which the month written whole had."""


class _RowGroupWriter:
    """A Parquet file written from tables of any length in row groups of :data:`_ROW_GROUP_ROWS` (the last
    shorter), each one contiguous chunk: the bytes of the whole table written at once, without holding it."""

    def __init__(self, out: Any, row_group_rows: int = _ROW_GROUP_ROWS) -> None:
        self.out, self.row_group_rows = out, row_group_rows
        self.pending: list[pa.Table] = []
        self.writer: pq.ParquetWriter | None = None
        self.written = 0

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.out, table.schema)
        self.pending.append(table)
        held = sum(t.num_rows for t in self.pending)
        if held >= self.row_group_rows:
            whole = pa.concat_tables(self.pending)
            full = held - held % self.row_group_rows
            for start in range(0, full, self.row_group_rows):
                self.writer.write_table(whole.slice(start, self.row_group_rows).combine_chunks())
            self.written += full
            self.pending = [whole.slice(full)]

    def __enter__(self) -> _RowGroupWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is not None:
            if self.writer is not None:
                self.writer.close()
            return
        assert self.writer is not None, "no table written"
        rest = pa.concat_tables(self.pending)
        if rest.num_rows or not self.written:  # an empty month is one empty row group, as pyarrow writes it
            self.writer.write_table(rest.combine_chunks())
        self.writer.close()


def _merged_days(lake: Lake, parts: list[str], hours: pd.DatetimeIndex) -> Iterator[pd.DataFrame]:
    """:func:`merge_moments` of the staged ``parts``, one UTC day of ``hours`` at a time, in (time, cell) order:
    a day reads only the parts that reach it (a MODIS day's pixels fall within 12 h before and 36 h after it).
    Yields at least one frame, empty when nothing was staged."""
    spans = []
    for part in parts:
        with lake.fs.open(part, "rb") as source:
            time = pd.read_parquet(source, columns=["time"])["time"]
        spans.append((time.min(), time.max()) if len(time) else None)
    empty = True
    for day in sorted(set(hours.normalize())):
        end = day + pd.Timedelta(days=1)
        frames = []
        for part, span in zip(parts, spans, strict=True):
            if span is None or span[1] < day or span[0] >= end:
                continue
            with lake.fs.open(part, "rb") as source:
                frame = pd.read_parquet(source)
            frames.append(frame[(frame["time"] >= day) & (frame["time"] < end)])
        if frames and sum(len(f) for f in frames):
            empty = False
            yield merge_moments(frames)
    if empty:
        yield pd.DataFrame(columns=["time", "cell", *_MOMENTS, *FEATURE_COLUMNS])


def _joined_rows(moments: pd.DataFrame, g: Grid) -> pd.DataFrame:
    """Rows of the joined month from merged moments: mean, std and mean distance, the cell's coordinates, the features."""
    n = moments["lst_count"].to_numpy(dtype=np.float64)
    mean = moments["lst_sum"].to_numpy(dtype=np.float64) / np.maximum(n, 1)
    variance = np.maximum(moments["lst_sumsq"].to_numpy(dtype=np.float64) / np.maximum(n, 1) - mean**2, 0.0)
    cell = moments["cell"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "time": pd.DatetimeIndex(moments["time"]).as_unit("ns"),
            "cell": cell.astype(np.int32),
            "latitude": g.lat[cell],
            "longitude": g.lon[cell],
            "lst": mean.astype(np.float32),
            "lst_count": n.astype(np.int32),
            "lst_std": np.sqrt(variance).astype(np.float32),
            "distance_km": (moments["distance_sum"].to_numpy(dtype=np.float64) / np.maximum(n, 1)).astype(np.float32),
            **{name: moments[name].to_numpy(dtype=np.float32) for name in FEATURE_COLUMNS},
        }
    )


def join_month(
    lake: Lake, month: Month, config: JoinConfig = JoinConfig(), validate: Callable[[str], object] | None = None
) -> MonthSummary:
    """Join a whole month in this process: :func:`join_day` for each day, then :func:`finalize_month`.

    Leftovers of killed runs of the month are swept first; ``validate`` as in :func:`finalize_month`.
    """
    sweep_month(lake, month)
    with lake.claim(uuid.uuid4().hex[:12]) as run:
        staging = staging_path(lake, month, run)
        counts = JoinCounts()
        try:
            for day in month_days(lake, month):
                counts.add(join_day(lake, day, month, staging, config))
            return finalize_month(lake, month, staging, counts, validate)
        finally:
            discard_staging(lake, staging)


def read_joined_at(lake: Lake, directory: str) -> pd.DataFrame:
    """The joined month in ``directory`` (published or hidden) as a DataFrame."""
    with lake.fs.open(f"{directory}/part-0.parquet", "rb") as source:
        return pd.read_parquet(source)


def read_joined(lake: Lake, month: Month) -> pd.DataFrame:
    """A joined month as a DataFrame."""
    return read_joined_at(lake, lake.joined_month(month))
