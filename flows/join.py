"""ERA x MODIS join flow: per month, a task per MODIS day, then the month's Parquet, validated before it is published."""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, wait

from blocks.lake import resolve_lake
from flows.common import DOCS_HOOKS, MonthParameter, months_of, settle
from ml4l.errors import InputError
from ml4l.join import discard_staging, staging_path, sweep_month
from ml4l.threads import cores_given
from tasks.join import finalize_month, join_day, month_days
from tasks.quality import quarantine, validate_modis_day


@flow(name="ml4l-join", log_prints=True, **DOCS_HOOKS)
def join_flow(
    recipe: str = "demo", months: list[MonthParameter] | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, dict[str, Any]]:
    """Join every requested month; returns each month's summary.

    Every MODIS day is validated before it is joined (``expectations/modis_day.yaml``)
    and every joined month before it is published (``expectations/joined_month.yaml``):
    a month that fails is quarantined and its previous version stays. Leftovers of
    killed runs are swept first (never a live run's). A month that fails does not stop
    the others; the flow fails at the end, naming it. A bad recipe fails before any work.
    At most ``ML4L_THREADS`` (else the cores given) MODIS days are in flight at once, whatever
    the task runner: memory does not grow with the days of the month.
    """
    lake = resolve_lake(lake_root, lake_block).require()
    wanted = months_of(recipe, months)
    for month in wanted:
        swept = sweep_month(lake, month)
        if swept:
            print(f"removed {len(swept)} leftovers of killed joins of {month}: {', '.join(swept)}")
    listed = {month: month_days.submit(lake.root, month) for month in wanted}
    wait(list(listed.values()))
    finals: dict[str, PrefectFuture] = {}
    staged: dict[str, tuple[str, list[tuple[PrefectFuture, PrefectFuture]]]] = {}
    summaries: dict[str, PrefectFuture] = {}
    in_flight: deque[PrefectFuture] = deque()
    days_at_once = cores_given()  # ML4L_THREADS, else the CPU affinity
    with contextlib.ExitStack() as claims:  # the staged parts are this run's until it ends, dead or alive
        for month, days in listed.items():
            if not days.state.is_completed():  # e.g. ERA not ingested or quarantined: reported by settle
                finals[month] = days
                continue
            staging = staging_path(lake, month, claims.enter_context(lake.claim(uuid.uuid4().hex[:12])))
            gated = []
            for day in days.result():
                while len(in_flight) >= days_at_once:  # each day in flight holds its pixels: bound them, not the runner
                    wait([in_flight.popleft()])
                check = validate_modis_day.submit(lake.root, recipe, day)
                gated.append((check, join_day.submit(lake.root, recipe, day, month, staging, wait_for=[check])))
                in_flight.append(gated[-1][1])
            staged[month] = (staging, gated)
        for month, (staging, gated) in staged.items():
            wait([f for pair in gated for f in pair])
            failed = [f for pair in gated for f in pair if not f.state.is_completed()]
            if failed:  # report the day's own error; the month's previous output stays
                finals[month] = failed[0]
                discard_staging(lake, staging)
                if isinstance(failed[0].state.result(raise_on_failure=False), InputError):  # bad data, not a fault or a bug
                    quarantine(lake.root, "joined_month", month, f"joined_month {month}: an input day failed: {failed[0].state.message}")
            else:
                finals[month] = summaries[month] = finalize_month.submit(lake.root, recipe, month, staging, [part for _, part in gated])
        settle(finals)
    for month, summary in (results := {m: f.result() for m, f in summaries.items()}).items():
        counts = summary["counts"]
        print(
            f"joined {month}: {summary['rows']} rows, {counts['matched']} of {counts['observed']} pixels matched, "
            f"mean distance {summary['mean_distance_km']:.1f} km -> {summary['path']}"
        )
    return results
