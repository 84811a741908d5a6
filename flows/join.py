"""ERA x MODIS join flow: per month, a task per MODIS day, then the month's Parquet."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, wait

from blocks.lake import resolve_lake
from flows.common import months_of, settle
from ml4l.join import discard_staging, staging_path
from tasks.join import finalize_month, join_day, month_days


@flow(name="ml4l-join", log_prints=True)
def join_flow(
    recipe: str = "demo", months: list[str] | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, dict[str, Any]]:
    """Join every requested month; returns each month's summary.

    A month that fails does not stop the others; the flow fails at the end, naming it.
    """
    lake = resolve_lake(lake_root, lake_block)
    listed = {month: month_days.submit(lake.root, month) for month in months_of(recipe, months)}
    wait(list(listed.values()))
    finals: dict[str, PrefectFuture] = {}
    staged: dict[str, tuple[str, list[PrefectFuture]]] = {}
    for month, days in listed.items():
        if not days.state.is_completed():  # e.g. ERA not ingested: reported by settle, other months go on
            finals[month] = days
            continue
        staging = staging_path(lake, month)
        staged[month] = (staging, [join_day.submit(lake.root, recipe, day, month, staging) for day in days.result()])
    for month, (staging, parts) in staged.items():
        wait(parts)
        failed = [part for part in parts if not part.state.is_completed()]
        if failed:  # report the day's own error; the month's previous output stays as it was
            finals[month] = failed[0]
            discard_staging(lake, staging)
        else:
            finals[month] = finalize_month.submit(lake.root, month, staging, parts)
    settle(finals)
    summaries = {month: future.result() for month, future in finals.items()}
    for month, summary in summaries.items():
        counts = summary["counts"]
        print(
            f"joined {month}: {summary['rows']} rows, {counts['matched']} of {counts['observed']} pixels matched, "
            f"mean distance {summary['mean_distance_km']:.1f} km -> {summary['path']}"
        )
    return summaries
