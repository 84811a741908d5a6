"""Which months a pipeline has finished: the ledger that lets a stopped backfill resume.

A month is complete when its pipeline wrote ``status/monthly/YYYY-MM.json`` (last,
after the month's outputs were validated), those outputs still exist, and the month
is not quarantined. Anything less is recomputed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd

from ml4l.config import check_month
from ml4l.join import month_path, table_path
from ml4l.lake import Lake
from ml4l.quality import quarantine_path
from ml4l.types import Month


def ledger_path(lake: Lake, month: Month) -> str:
    """The month's completion record."""
    return lake.path("status", "monthly", f"{check_month(month)}.json")


def month_complete(lake: Lake, month: Month) -> bool:
    """Whether ``month`` was completed and validated, and its outputs are still there and not quarantined."""
    fs = lake.fs
    return (
        fs.exists(ledger_path(lake, month))
        and fs.exists(lake.era_month_marker(month))
        and fs.exists(table_path(lake, month))
        and not any(fs.exists(quarantine_path(lake, dataset, month)) for dataset in ("era_month", "joined_month"))
    )


def mark_complete(lake: Lake, month: Month, record: dict[str, Any]) -> str:
    """Write the month's completion record (whole, by rename); returns its path."""
    path = ledger_path(lake, month)
    staging = f"{path}.tmp"
    lake.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with lake.fs.open(staging, "w") as out:
        json.dump({"month": month, "completed": pd.Timestamp.now("UTC").isoformat(), **record}, out, indent=2, default=str)
    lake.fs.mv(staging, path)
    return path


def forget(lake: Lake, month: Month) -> None:
    """Drop the month's completion record, so that it is recomputed."""
    if lake.fs.exists(ledger_path(lake, month)):
        lake.fs.rm(ledger_path(lake, month))


def sweep(lake: Lake, month: Month) -> list[str]:
    """Remove hidden staging left by a run of ``month`` that was killed; returns what was removed.

    Call it holding the month's lock: then nothing else is writing these.
    """
    removed = lake.remove_stale_staging(month_path(lake, month))
    for path in [*lake.fs.glob(lake.path("joined", "_staging", f"{check_month(month)}-*")), f"{ledger_path(lake, month)}.tmp"]:
        if lake.fs.exists(path):
            lake.fs.rm(path, recursive=True)
            removed.append(path)
    for model in lake.fs.glob(lake.path("predictions", "*")):
        removed += lake.remove_stale_staging(f"{model}/{month}.zarr")
    return removed


def previous_month(moment: datetime | pd.Timestamp) -> Month:
    """The calendar month before ``moment``'s, on ``moment``'s own clock (a run early in a month processes the one before)."""
    stamp = pd.Timestamp(moment)
    return str((stamp.tz_localize(None) if stamp.tzinfo else stamp).to_period("M") - 1)


def month_range(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last``, inclusive."""
    if check_month(last) < check_month(first):
        raise ValueError(f"month range ends ({last}) before it starts ({first})")
    return [str(p) for p in pd.period_range(first, last, freq="M")]
