"""Tasks of the ERA x MODIS join: one per MODIS day, then one that finalises the month."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from ml4l import join, plausibility, quality
from ml4l.config import load_recipe
from ml4l.lake import Lake, era_raw_listing, retry_io
from ml4l.types import Month
from tasks.quality import gate
from tasks.retry import IO_TASK_OPTIONS


@task(name="join-month-days", tags=["join"], task_run_name="join-days-{month}", **IO_TASK_OPTIONS)
def month_days(lake_root: str, month: Month) -> list[str]:
    """The MODIS days that can fill the month's ERA hours.

    Refuses a quarantined ERA month, one with two files for the month in a raw folder, and
    one whose fields are implausible against the validated months before it
    (:func:`ml4l.plausibility.check`, naming the variable and file); lists unexpected raw files.
    """
    lake = Lake(lake_root)
    quality.refuse_quarantined(lake, "era_month", month)
    for line in era_raw_listing(lake, month).lines():  # raises on a second file for the month
        print(f"ERA {month}: {line}")
    days = join.month_days(lake, month)
    plausibility.check(lake, month)
    return days


@task(name="check-era-history", tags=["quality", "era"], task_run_name="check-era-history-{month}", **IO_TASK_OPTIONS)
def check_era_history(lake_root: str, month: Month) -> list[Month]:
    """Check an ingested ERA month's per-variable statistics against its history (suite ``era_history``).

    Returns the months compared with.
    """
    months = plausibility.check(Lake(lake_root), month)
    print(f"era_history {month}: " + (f"plausible against {', '.join(months)}" if months else "first month, recorded as history"))
    return months


@task(name="join-modis-day", tags=["join", "io"], task_run_name="join-{day}-for-{month}", **IO_TASK_OPTIONS)
def join_day(lake_root: str, recipe: str, day: str, month: Month, staging: str) -> dict[str, Any]:
    """Join one MODIS day into the month's staging directory; returns its pixel counts."""
    counts = join.join_day(Lake(lake_root), day, month, staging, load_recipe(recipe).join)
    return asdict(counts)


def staged_month_check(lake: Lake, recipe: str, month: Month) -> Callable[[str], object]:
    """The ``joined_month`` suite run on a month in its hidden directory, before it is published.

    Transient faults of the suite's own I/O (its reports, the quarantine record) are
    retried like any other; a failed suite quarantines the month and raises.
    """
    threshold = load_recipe(recipe).join.threshold_km

    def check(directory: str) -> object:
        def build() -> tuple[object, dict[str, Any]]:
            return join.read_joined_at(lake, directory), quality.joined_month_parameters(threshold)

        return retry_io(gate, lake, "joined_month", month, build)

    return check


@task(name="finalize-joined-month", tags=["join", "io"], task_run_name="finalize-join-{month}", **IO_TASK_OPTIONS)
def finalize_month(lake_root: str, recipe: str, month: Month, staging: str, day_counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the staged days into the month's Parquet, validate it, and only then publish it; returns the month's summary.

    A month that fails validation is quarantined, kept at ``quarantine/joined_month/<month>.rejected``,
    and the published month stays as it was.
    """
    lake = Lake(lake_root)
    counts = join.JoinCounts()
    for found in day_counts:
        counts.add(join.JoinCounts(**found))
    summary = join.finalize_month(lake, month, staging, counts, staged_month_check(lake, recipe, month))
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
