"""ERA x MODIS join flow: per month, a task per MODIS day, then the month's Parquet."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, wait

from blocks.lake import resolve_lake
from flows.common import MonthParameter, months_of, settle
from ml4l.join import discard_staging, staging_path
from tasks.join import finalize_month, join_day, month_days
from tasks.quality import quarantine, validate_joined_month, validate_modis_day


@flow(name="ml4l-join", log_prints=True)
def join_flow(
    recipe: str = "demo", months: list[MonthParameter] | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, dict[str, Any]]:
    """Join every requested month; returns each month's summary.

    Every MODIS day is validated before it is joined (``expectations/modis_day.yaml``)
    and every joined month after it is written (``expectations/joined_month.yaml``);
    failures quarantine the month. A month that fails does not stop the others; the
    flow fails at the end, naming it.
    """
    lake = resolve_lake(lake_root, lake_block)
    listed = {month: month_days.submit(lake.root, month) for month in months_of(recipe, months)}
    wait(list(listed.values()))
    finals: dict[str, PrefectFuture] = {}
    staged: dict[str, tuple[str, list[tuple[PrefectFuture, PrefectFuture]]]] = {}
    summaries: dict[str, PrefectFuture] = {}
    for month, days in listed.items():
        if not days.state.is_completed():  # e.g. ERA not ingested or quarantined: reported by settle
            finals[month] = days
            continue
        staging = staging_path(lake, month)
        gated = []
        for day in days.result():
            check = validate_modis_day.submit(lake.root, recipe, day)
            gated.append((check, join_day.submit(lake.root, recipe, day, month, staging, wait_for=[check])))
        staged[month] = (staging, gated)
    for month, (staging, gated) in staged.items():
        wait([f for pair in gated for f in pair])
        failed = [f for pair in gated for f in pair if not f.state.is_completed()]
        if failed:  # report the day's own error; the month's previous output stays, quarantined
            finals[month] = failed[0]
            discard_staging(lake, staging)
            quarantine(lake.root, "joined_month", month, f"joined_month {month}: an input day failed: {failed[0].state.message}")
        else:
            final = finalize_month.submit(lake.root, month, staging, [part for _, part in gated])
            finals[month] = validate_joined_month.submit(lake.root, recipe, month, wait_for=[final])
            summaries[month] = final
    settle(finals)
    for month, summary in (results := {m: f.result() for m, f in summaries.items()}).items():
        counts = summary["counts"]
        print(
            f"joined {month}: {summary['rows']} rows, {counts['matched']} of {counts['observed']} pixels matched, "
            f"mean distance {summary['mean_distance_km']:.1f} km -> {summary['path']}"
        )
    return results
