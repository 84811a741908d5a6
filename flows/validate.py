"""Validation flow: re-run the data-quality suites on months already in the lake, and refresh Data Docs."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.lake import resolve_lake
from flows.common import DOCS_HOOKS, MonthParameter, months_of, settle
from ml4l.era_store import complete_months
from tasks.join import check_era_history
from tasks.quality import validate_era_month, validate_joined_month


@flow(name="ml4l-validate", log_prints=True, **DOCS_HOOKS)
def validate_flow(
    recipe: str = "demo", months: list[MonthParameter] | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, Any]:
    """Validate each month's ERA GRIB (``era_month``), where ingested its plausibility against the months
    before it (``era_history``) and, where joined, its table (``joined_month``).

    A month that fails is quarantined, with its report in Data Docs; the flow fails at the end, naming it.
    """
    lake = resolve_lake(lake_root, lake_block).require()
    futures = {}
    ingested = complete_months(lake)
    for month in months_of(recipe, months):
        futures[f"era_month {month}"] = validate_era_month.submit(lake.root, recipe, month)
        if month in ingested:  # one month at a time, in order: a month that passes is history for the next
            futures[f"era_history {month}"] = check_era_history.submit(lake.root, month)
            futures[f"era_history {month}"].wait()
        if lake.fs.exists(lake.joined_table(month)):
            futures[f"joined_month {month}"] = validate_joined_month.submit(lake.root, recipe, month)
    settle(futures)
    results = {key: future.result() for key, future in futures.items()}
    for key in results:
        print(f"{key}: passed")
    return results
