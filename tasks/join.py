"""Tasks of the ERA x MODIS join: one per MODIS day, then one that finalises the month."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from ml4l import join, quality
from ml4l.config import load_recipe
from ml4l.lake import Lake
from ml4l.types import Month
from tasks.retry import IO_TASK_OPTIONS


@task(name="join-month-days", tags=["join"], task_run_name="join-days-{month}", **IO_TASK_OPTIONS)
def month_days(lake_root: str, month: Month) -> list[str]:
    """The MODIS days that can fill the month's ERA hours; refuses a quarantined ERA month."""
    lake = Lake(lake_root)
    quality.refuse_quarantined(lake, "era_month", month)
    return join.month_days(lake, month)


@task(name="join-modis-day", tags=["join", "io"], task_run_name="join-{day}-for-{month}", **IO_TASK_OPTIONS)
def join_day(lake_root: str, recipe: str, day: str, month: Month, staging: str) -> dict[str, Any]:
    """Join one MODIS day into the month's staging directory; returns its pixel counts."""
    counts = join.join_day(Lake(lake_root), day, month, staging, load_recipe(recipe).join)
    return asdict(counts)


@task(name="finalize-joined-month", tags=["join", "io"], task_run_name="finalize-join-{month}", **IO_TASK_OPTIONS)
def finalize_month(lake_root: str, month: Month, staging: str, day_counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the staged days into the month's Parquet; returns the month's summary."""
    counts = join.JoinCounts()
    for found in day_counts:
        counts.add(join.JoinCounts(**found))
    summary = join.finalize_month(Lake(lake_root), month, staging, counts)
    create_table_artifact(
        key=f"join-{month}",
        table=[
            {
                "month": month,
                "rows": summary.rows,
                "pixels observed": counts.observed,
                "matched": counts.matched,
                "beyond threshold": counts.beyond_threshold,
                "beyond lat limit": counts.beyond_lat,
                "no ERA hour": counts.no_era,
                "missing days": ", ".join(counts.missing_days) or "-",
                "mean distance km": round(summary.mean_distance_km, 2),
            }
        ],
        description=f"ERA x MODIS join of {month}: {summary.path}",
    )
    return summary.to_dict()
