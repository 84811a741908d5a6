"""Validation tasks: run a dataset's suite, publish the summary and Data Docs link, quarantine failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact

from ml4l import quality
from ml4l.config import load_recipe
from ml4l.errors import InputError
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.modis import find_modis, read_modis
from ml4l.types import Month

# Validation is deterministic: a failure is bad data, never worth a retry.
VALIDATION_TASK_OPTIONS: dict[str, Any] = {"retries": 0}


def _artifact_key(dataset: str, key: str) -> str:
    return f"dq-{dataset}-{key}".replace("_", "-").lower()


def publish(outcome: quality.Validation) -> None:
    """A table artifact with the summary and a link artifact to the Data Docs page."""
    rows = [{"expectation": "(all)", "result": "passed" if outcome.success else "FAILED", "expectations run": outcome.evaluated,
             "failed": len(outcome.failed), "unexpected %": None}]
    rows += [{"expectation": f.name, "result": "failed", "expectations run": None, "failed": None,
              "unexpected %": None if f.unexpected_percent is None else round(f.unexpected_percent, 3)} for f in outcome.failed]
    key = _artifact_key(outcome.dataset, outcome.key)
    create_table_artifact(key=key, table=rows, description=outcome.summary())
    if outcome.docs:
        create_link_artifact(key=f"{key}-docs", link=outcome.docs, link_text=f"Data Docs: {outcome.dataset} {outcome.key}")


def gate(lake: Lake, dataset: str, key: str, build: Callable[[], tuple[pd.DataFrame, dict[str, Any]]]) -> dict[str, Any]:
    """Build the table and validate it; unreadable input is quarantined too. Raises when quarantined."""
    try:
        table, parameters = build()
    except InputError as exc:
        quality.quarantine(lake, dataset, key, f"{dataset} {key}: unreadable input: {exc}")
        raise
    outcome = quality.validate(lake, dataset, key, table, parameters)
    publish(outcome)
    print(outcome.summary() + (f" -> {outcome.docs}" if outcome.docs else ""))
    if not outcome.success:
        raise quality.QuarantinedError(f"{dataset}/{key}", outcome.summary())
    return outcome.to_dict()


@task(name="validate-era-month", tags=["quality", "era"], task_run_name="validate-era-{month}", **VALIDATION_TASK_OPTIONS)
def validate_era_month(lake_root: str, recipe: str, month: Month) -> dict[str, Any]:
    """Validate the month's raw ERA GRIB before it is ingested."""
    lake = Lake(lake_root)
    spec = load_recipe(recipe)

    def build() -> tuple[pd.DataFrame, dict[str, Any]]:
        hours = len(spec.period.hours_of(month))
        return quality.era_month_table(lake, month), quality.era_month_parameters(spec.grid, hours)

    return gate(lake, "era_month", month, build)


@task(name="validate-modis-day", tags=["quality", "modis"], task_run_name="validate-modis-{day}", **VALIDATION_TASK_OPTIONS)
def validate_modis_day(lake_root: str, recipe: str, day: str) -> dict[str, Any] | None:
    """Validate one MODIS file before it is joined; ``None`` when the day has no file (counted by the join)."""
    lake = Lake(lake_root)
    path = find_modis(lake, day)
    if path is None:
        return None
    resolution = load_recipe(recipe).sample.modis_resolution

    def build() -> tuple[pd.DataFrame, dict[str, Any]]:
        table = quality.modis_day_table(read_modis(path, lake.local(path)))
        return table, quality.modis_day_parameters(resolution)

    return gate(lake, "modis_day", day, build)


@task(name="validate-joined-month", tags=["quality", "join"], task_run_name="validate-joined-{month}", **VALIDATION_TASK_OPTIONS)
def validate_joined_month(lake_root: str, recipe: str, month: Month) -> dict[str, Any]:
    """Validate a joined month after it is written."""
    lake = Lake(lake_root)
    threshold = load_recipe(recipe).join.threshold_km
    return gate(lake, "joined_month", month, lambda: (read_joined(lake, month), quality.joined_month_parameters(threshold)))


@task(name="refuse-quarantined", tags=["quality"], task_run_name="check-{dataset}-{key}", **VALIDATION_TASK_OPTIONS)
def refuse_quarantined(lake_root: str, dataset: str, key: str) -> None:
    """Fail, naming the failed expectations, if ``dataset``/``key`` is quarantined."""
    quality.refuse_quarantined(Lake(lake_root), dataset, key)


@task(name="quarantine", tags=["quality"], task_run_name="quarantine-{dataset}-{key}", **VALIDATION_TASK_OPTIONS)
def quarantine(lake_root: str, dataset: str, key: str, reason: str) -> str:
    """Record ``dataset``/``key`` as quarantined (e.g. a month whose input failed); returns the marker path."""
    return quality.quarantine(Lake(lake_root), dataset, key, reason)
