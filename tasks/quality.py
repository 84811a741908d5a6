"""Validation tasks: run a dataset's suite, publish the summary and Data Docs link, quarantine failures.

A failed validation emits the Prefect event ``ml4l.validation.failed`` and every quarantine
``ml4l.month.quarantined``, with the month as resource (``ml4l.month.YYYY-MM``): automations
react to them (``deployments/local_platform.py`` creates one) and the UI's event feed shows them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.events.related import related_resources_from_run_context
from prefect.events.worker import should_emit_events
from prefect.utilities.asyncutils import run_coro_as_sync

from ml4l import quality
from ml4l.config import load_recipe
from ml4l.errors import InputError
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.readers.modis.folder import read_day, scan_folder
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


def month_resource(dataset: str, key: str) -> dict[str, str]:
    """The event resource of ``dataset``/``key``: its month (a day's key starts with its month), else the key itself."""
    month = key[:7] if re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", key) else None
    return {"prefect.resource.id": f"ml4l.month.{month}" if month else f"ml4l.{dataset}.{key}",
            "prefect.resource.name": month or key, "ml4l.dataset": dataset, "ml4l.key": key}


def announce(lake: Lake, event: str, dataset: str, key: str, reason: str, outcome: quality.Validation | None = None) -> None:
    """Emit ``event`` about ``dataset``/``key`` (``ml4l.month.quarantined`` only where the key is a month or a day)."""
    resource = month_resource(dataset, key)
    if event == "ml4l.month.quarantined" and not resource["prefect.resource.id"].startswith("ml4l.month."):
        return
    payload: dict[str, Any] = {"reason": reason, "marker": lake.quarantine_record(dataset, key)}
    if outcome is not None:
        payload |= {"failed": [f.name for f in outcome.failed], "docs": outcome.docs}
    send_event(Event(event=event, resource=resource, payload=payload))


def send_event(event: Event) -> None:
    """Send ``event``, with the current flow and task run as related resources, to the API of the current settings, now.

    Not ``emit_event``: its queue is one per process, bound to whichever API it first
    served (in a test session, the test harness's server, not the platform's) and
    sent in the background; an alert must reach the server its run reports to before
    the task fails. Nothing is sent where events are off (as ``emit_event``); a failed send
    is logged, not raised: the quarantine is recorded in the lake either way.
    """
    if not should_emit_events():
        return

    async def send() -> None:
        async with get_client() as api, get_events_client() as events:
            event.related += await related_resources_from_run_context(api, exclude={event.resource.id})
            await events.emit(event)

    try:
        run_coro_as_sync(send())
    except Exception as exc:  # noqa: BLE001 - a lost alert must not hide the quarantine it announces
        logging.getLogger(__name__).warning("event %s about %s not sent: %r", event.event, event.resource.id, exc)


def quarantined(lake: Lake, dataset: str, key: str, reason: str, outcome: quality.Validation | None = None) -> None:
    """Announce a quarantine that ``quality`` recorded (or record it, when no validation did)."""
    if outcome is None:
        quality.quarantine(lake, dataset, key, reason)
    else:
        announce(lake, "ml4l.validation.failed", dataset, key, reason, outcome)
    announce(lake, "ml4l.month.quarantined", dataset, key, reason, outcome)


def gate(lake: Lake, dataset: str, key: str, build: Callable[[], tuple[pd.DataFrame, dict[str, Any]]]) -> dict[str, Any]:
    """Build the table and validate it; unreadable input is quarantined too. Raises when quarantined."""
    try:
        table, parameters = build()
    except InputError as exc:
        quarantined(lake, dataset, key, f"{dataset} {key}: unreadable input: {exc}")
        raise
    outcome = quality.validate(lake, dataset, key, table, parameters)
    publish(outcome)
    print(outcome.summary() + (f" -> {outcome.docs}" if outcome.docs else ""))
    if not outcome.success:
        quarantined(lake, dataset, key, outcome.summary(), outcome)
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
    """Validate one MODIS day's files before they are joined; ``None`` when the day has no file (counted by the join)."""
    lake = Lake(lake_root)
    folder = scan_folder(lake)
    if not folder.holds(day):
        return None
    max_error = load_recipe(recipe).join.max_lst_error_k
    qc_counts: dict[str, int] = {}

    def build() -> tuple[pd.DataFrame, dict[str, Any]]:
        found = read_day(lake, day, max_error, folder)
        assert found is not None, "the folder holds the day"
        qc_counts.update(found.data.attrs["qc_counts"])
        return quality.modis_day_table(found.parts), quality.modis_day_parameters(max_error)

    outcome = gate(lake, "modis_day", day, build)
    create_table_artifact(
        key=_artifact_key("modis_day_qc", day),
        table=[{"QC class": name, "pixels": count} for name, count in qc_counts.items()],
        description=f"MODIS {day}: every pixel of its files by QC class (the filter keeps up to {max_error} K)",
    )
    return {**outcome, "qc_counts": qc_counts}


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
    lake = Lake(lake_root)
    quarantined(lake, dataset, key, reason)
    return lake.quarantine_record(dataset, key)
