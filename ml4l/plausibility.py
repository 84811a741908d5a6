"""Plausibility against history: an ERA month's per-variable statistics against the validated months before it.

A field that decodes, has the right hours and lies in its physical range can still be
the wrong field: ``aluvp`` and ``alnip`` with their labels swapped pass every
per-message check. Their statistics do not look like their own history, though.

For each time-variable field of a month in the store, :func:`month_statistics` takes
the mean, standard deviation, 1st, 50th and 99th percentiles and the share missing.
:func:`history_table` fits bounds on the validated months before it (at most
:data:`WINDOW`): the range of each statistic over those months, widened by the
smaller of :data:`SPREAD` times the variable's mean spatial standard deviation and
:data:`RELATIVE` times its magnitude (the share missing by :data:`MISSING_TOLERANCE`). The ``era_history`` suite
(``expectations/era_history.yaml``) checks every statistic against its bounds;
:func:`violations` names the variable, statistic and file of each that fell outside.
A month that passes has its statistics recorded (:func:`record`) and becomes history.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import zarr

from ml4l import quality
from ml4l.era_store import store_period
from ml4l.errors import InputError
from ml4l.lake import Lake, retry_io
from ml4l.ml.stats import RunningStats
from ml4l.types import Month
from ml4l.variables import TIME_VARIABLE
from ml4l.zarr_io import zarr_store

STATISTICS = ("mean", "std", "q01", "q50", "q99", "missing")
WINDOW = 12
"""Validated months before the checked one that the bounds are fitted on (the latest ones)."""
SPREAD = 2.0
"""Bounds widen by at most this many of the field's mean spatial standard deviations (weather's month-to-month swing)..."""
RELATIVE = 0.2
"""...and by at most this share of the field's magnitude (the larger of its 1st and 99th percentiles, absolute).

Fields like albedos have a spread as large as their values, so a spread-based width alone
would let a swap (all percentiles moved by some 40 %) pass; the smaller width applies."""
MISSING_TOLERANCE = 0.01
"""How far beyond the history's range the share of missing values may go."""
MAX_HOURS = 124
"""Hours read per month, evenly spaced (every 6th of a 31-day month): plenty for statistics of a whole month."""
QUANTILE_POINTS = 20_000
"""Cells per hour, evenly spaced, that the percentiles are taken over."""


def month_statistics(lake: Lake, month: Month) -> dict[str, dict[str, float]]:
    """``{variable: {statistic: value}}`` of ``month``'s hours in the time-variable store."""
    _, times = store_period(lake.era_timevar)
    positions = np.flatnonzero(np.asarray(times.strftime("%Y-%m") == month))
    if positions.size == 0:
        raise ValueError(f"month {month} has no hours in {lake.era_timevar}")
    hours = positions[:: max(1, -(-positions.size // MAX_HOURS))]
    store = zarr.open_group(zarr_store(lake.era_timevar), mode="r")
    out: dict[str, dict[str, float]] = {}
    for variable in TIME_VARIABLE:
        array = store[variable.name]
        cells = np.arange(0, array.shape[1], max(1, array.shape[1] // QUANTILE_POINTS))
        moments, sampled, missing, total = RunningStats(1), [], 0, 0
        for hour in hours:
            values = np.asarray(array[int(hour)], dtype=np.float64)
            moments.update(values)
            sampled.append(values[cells])
            missing += int(np.isnan(values).sum())
            total += values.size
        q01, q50, q99 = np.nanpercentile(np.concatenate(sampled), [1, 50, 99]) if missing < total else (np.nan,) * 3
        out[variable.name] = {
            "mean": float(moments.mean[0]),
            "std": float(moments.std[0]),
            "q01": float(q01),
            "q50": float(q50),
            "q99": float(q99),
            "missing": missing / total,
        }
    return out


def recorded_months(lake: Lake, before: Month) -> list[Month]:
    """The validated months before ``before`` whose statistics are recorded, the latest :data:`WINDOW` of them."""
    found = sorted(p.rsplit("/", 1)[-1].removesuffix(".json") for p in lake.fs.glob(lake.era_statistics("*")))
    return [m for m in found if m < before][-WINDOW:]


def read_statistics(lake: Lake, month: Month) -> dict[str, dict[str, float]]:
    with lake.fs.open(lake.era_statistics(month)) as source:
        return dict(json.load(source))


def record(lake: Lake, month: Month, statistics: dict[str, dict[str, float]]) -> str:
    """Record a validated month's statistics (written aside, then renamed); returns the path."""
    path = lake.era_statistics(month)
    with lake.replace_whole(path) as staging, lake.fs.open(staging, "w") as out:
        json.dump(statistics, out, indent=2)
    return path


def history_table(lake: Lake, month: Month, statistics: dict[str, dict[str, float]]) -> tuple[pd.DataFrame, list[Month]]:
    """One row per variable: its file, each statistic, and each statistic's bounds fitted on the history.

    Columns ``variable, file``, then ``<stat>``, ``<stat>_low``, ``<stat>_high`` and ``<stat>_position``
    (where the value lies between its bounds: 0 at ``low``, 1 at ``high``; NaN for a missing
    value) for each of :data:`STATISTICS`. Returns the table and the months the bounds were
    fitted on (none: no bounds).
    """
    months = recorded_months(lake, month)
    history = [read_statistics(lake, m) for m in months]
    rows = []
    for variable in TIME_VARIABLE:
        path = lake.era_sfc(month) if variable.group == "sfc" else lake.era_skin(month)
        row: dict[str, object] = {"variable": variable.name, "file": os.path.basename(path)}
        past = {s: np.array([h[variable.name][s] for h in history if variable.name in h], dtype=np.float64) for s in STATISTICS}
        width = np.nan
        if np.isfinite(past["std"]).any():
            magnitude = float(np.nanmax(np.abs(np.concatenate([past["q01"], past["q99"]]))))
            width = min(SPREAD * float(np.nanmean(past["std"])), RELATIVE * magnitude)
        for statistic in STATISTICS:
            value, seen = statistics[variable.name][statistic], past[statistic]
            margin = MISSING_TOLERANCE if statistic == "missing" else width
            low, high = -np.inf, np.inf
            if np.isfinite(seen).any():
                low, high = float(np.nanmin(seen)) - margin, float(np.nanmax(seen)) + margin
            row[statistic], row[f"{statistic}_low"], row[f"{statistic}_high"] = value, low, high
            row[f"{statistic}_position"] = (value - low) / (high - low) if high > low else (0.5 if value == low else np.nan)
        rows.append(row)
    return pd.DataFrame(rows), months


def violations(table: pd.DataFrame, months: list[Month]) -> list[tuple[str, str]]:
    """Each statistic outside its bounds: ``(file, "<variable> <statistic> <value> outside [low, high] fitted on <months>")``."""
    found = []
    for row in table.itertuples(index=False):
        for statistic in STATISTICS:
            value, low, high = getattr(row, statistic), getattr(row, f"{statistic}_low"), getattr(row, f"{statistic}_high")
            if not low <= value <= high:
                found.append(
                    (str(row.file), f"{row.variable} {statistic} {value:.6g} outside [{low:.6g}, {high:.6g}] fitted on {', '.join(months)}")
                )
    return found


def check(lake: Lake, month: Month) -> list[Month]:
    """Validate ``month``'s statistics against its history (suite ``era_history``); record them if they pass.

    Returns the months the bounds were fitted on (none for a lake's first month: nothing to compare).

    Raises
    ------
    InputError
        Naming the file of the first implausible field, and every variable, statistic and
        bound that failed; the month is quarantined as ``era_history/<month>``.
    """
    statistics = month_statistics(lake, month)
    table, months = history_table(lake, month, statistics)
    if months:
        outcome = retry_io(quality.validate, lake, "era_history", month, table, {"variables": len(TIME_VARIABLE)})
        if not outcome.success:
            found = violations(table, months)
            files = {os.path.basename(p): p for p in (lake.era_sfc(month), lake.era_skin(month))}
            problem = "; ".join(f"{file}: {text}" for file, text in found) or outcome.summary()
            quality.quarantine(lake, "era_history", month, f"era_history {month}: {problem}", outcome.failed, outcome.docs)
            raise InputError(files[found[0][0]] if found else lake.era_sfc(month), f"implausible against its history: {problem}")
    record(lake, month, statistics)
    return months
