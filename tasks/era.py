"""Tasks of the ERA ingest: create the store, ingest constants, ingest a month, withdraw a month whose input failed."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_table_artifact
from tqdm.auto import tqdm

from ml4l import era_store, quality
from ml4l.config import load_recipe
from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.types import Month
from tasks.retry import IO_TASK_OPTIONS


@task(name="create-era-store", tags=["era", "io"], **IO_TASK_OPTIONS)
def create_store(lake_root: str, recipe: str) -> str:
    """Create the time-variable store for the recipe's grid and first month; returns its path."""
    spec = load_recipe(recipe)
    return era_store.create_timevar_store(Lake(lake_root), spec.grid, spec.period)


@task(name="ingest-era-constants", tags=["era", "io"], **IO_TASK_OPTIONS)
def ingest_constants(lake_root: str, refresh: bool = True) -> str:
    """Ingest the V15/V20 constants and the lake files (kept if present and not ``refresh``); returns the store path."""
    return era_store.ingest_constants(Lake(lake_root), refresh)


@task(name="ingest-era-month", tags=["era", "io"], task_run_name="ingest-era-{month}", **IO_TASK_OPTIONS)
def ingest_month(lake_root: str, month: Month, store: str) -> str:
    """Ingest one month's GRIB files into ``store``, which grows to reach it; returns the store path.

    Bad input quarantines the month (``era_month``): it is no longer taken as
    ingested, so later stages refuse it until a good input is ingested.
    """
    lake = Lake(lake_root)
    try:
        with tqdm(desc=f"ERA {month}", unit="h", disable=None) as bar:
            report = era_store.ingest_month(lake, month, progress=bar.update)
    except InputError as exc:
        quality.quarantine(lake, "era_month", month, f"era_month {month}: the ERA ingest failed: {exc}")
        raise
    create_table_artifact(
        key=f"era-ingest-{month}",
        table=[{"month": report.month, "hours": report.hours, "variables": report.variables, "store": report.store}],
        description=f"ERA ingest of {month}: " + ", ".join(report.files),
    )
    return report.store


@task(name="withdraw-era-month", tags=["era"], task_run_name="withdraw-era-{month}", **IO_TASK_OPTIONS)
def withdraw_month(lake_root: str, month: Month) -> bool:
    """Mark a month whose input failed its checks as not ingested; whether it had been."""
    return era_store.withdraw_month(Lake(lake_root), month)
