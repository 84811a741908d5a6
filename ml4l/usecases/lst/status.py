"""Which months a pipeline has finished: the ledger that lets a stopped backfill resume, and the lake's table of months by stage.

A month is complete when its pipeline wrote ``status/monthly/YYYY-MM.json`` (last,
after the month's outputs were validated), those outputs still exist, and the month
is not quarantined. Anything less is recomputed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from ml4l.config import check_month
from ml4l.era_store import complete_months
from ml4l.join import sweep_month
from ml4l.lake import Lake, find_debris
from ml4l.quality import quarantined
from ml4l.types import Month


def ledger_path(lake: Lake, month: Month) -> str:
    """The month's completion record."""
    return lake.status_record(check_month(month))


def month_complete(lake: Lake, month: Month) -> bool:
    """Whether ``month`` was completed and validated, and its outputs are still there and not quarantined."""
    fs = lake.fs
    return (
        fs.exists(ledger_path(lake, month))
        and month in complete_months(lake)
        and fs.exists(lake.joined_table(month))
        and not any(fs.exists(lake.quarantine_record(dataset, month)) for dataset in ("era_month", "joined_month"))
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
    removed = sweep_month(lake, check_month(month))  # spares a live run's staging
    tmp = f"{ledger_path(lake, month)}.tmp"
    if lake.fs.exists(tmp):
        lake.fs.rm(tmp)
        removed.append(tmp)
    for model in lake.fs.glob(lake.predictions("*")):
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


# ---- the lake's months by stage (``ml4l status``) ----

STAGES = ("raw files", "ingested", "joined", "validated", "dataset", "model")


@dataclass(frozen=True)
class MonthStatus:
    """How far one month got through each stage."""

    month: Month
    era_files: int
    """ERA_sfc and ERA_skin files present (of 2)."""
    modis_days: int
    """MODIS files present for days of the month."""
    ingested: bool
    joined: bool
    validated: bool | None
    """The joined month's latest validation passed; ``None``: never validated."""
    report: str | None
    """The Data Docs page of that validation."""
    datasets: tuple[str, ...]
    """ML-ready sets holding the month, as ``name:split``."""
    models: tuple[str, ...]
    """Models whose predictions of the month are written."""
    complete: bool


_RAW_ERA = re.compile(r"_(\d{4})_(\d{2})\.grib$")
_RAW_MODIS = re.compile(r"_(\d{4}-\d{2})-\d{2}\.[^.]+$")


def _month_of_joined(path: str) -> Month:
    year, month = path.split("/")[-3:-1]
    return f"{year.removeprefix('year=')}-{month.removeprefix('month=')}"


def latest_validation(lake: Lake, dataset: str, key: str) -> tuple[bool, str] | None:
    """Whether the latest stored validation of ``dataset``/``key`` passed, and its Data Docs page; ``None`` if never validated."""
    gx = lake.reports / "gx" / "uncommitted"
    results = sorted((gx / "validations" / dataset).glob(f"*{key}*/*/*.json"), key=lambda p: p.parent.name)
    if not results:
        return None
    latest = results[-1]
    page = gx / "data_docs" / "local_site" / latest.relative_to(gx).with_suffix(".html")
    return bool(json.loads(latest.read_text()).get("success")), str(page)


def _ml_ready_months(lake: Lake) -> dict[Month, list[str]]:
    found: dict[Month, list[str]] = {}
    for path in sorted(lake.fs.glob(lake.ml_normalisation("*"))):
        name = path.rsplit("/", 2)[-2]
        with lake.fs.open(path) as source:
            for split, months in json.load(source).get("months", {}).items():
                for month in months:
                    found.setdefault(month, []).append(f"{name}:{split}")
    return found


def lake_status(lake: Lake) -> list[MonthStatus]:
    """Every month the lake knows of (raw files, store, joined, quarantine, ledger, predictions), by stage."""
    fs = lake.fs
    era: dict[Month, int] = {}
    for path in fs.glob(lake.era_sfc("*")) + fs.glob(lake.era_skin("*")):
        if found := _RAW_ERA.search(path):
            era[f"{found[1]}-{found[2]}"] = era.get(f"{found[1]}-{found[2]}", 0) + 1
    modis: dict[Month, set[str]] = {}
    for path in fs.glob(lake.modis_file("aquaDay_*")):
        if found := _RAW_MODIS.search(path):
            modis.setdefault(found[1], set()).add(path.rsplit("_", 1)[-1].split(".")[0])
    ingested = set(complete_months(lake))
    joined = {_month_of_joined(p) for p in fs.glob(lake.joined_table("*"))}
    ledger = {p.rsplit("/", 1)[-1].removesuffix(".json") for p in fs.glob(lake.status_record("*"))}
    datasets = _ml_ready_months(lake)
    models: dict[Month, list[str]] = {}
    for path in sorted(fs.glob(lake.prediction("*", "*"))):
        model, name = path.rsplit("/", 2)[-2:]
        models.setdefault(name.removesuffix(".zarr"), []).append(model)
    quarantined_months = {str(r["key"])[:7] for r in quarantined(lake)}
    months = sorted(set(era) | set(modis) | ingested | joined | ledger | set(datasets) | set(models) | quarantined_months)
    rows = []
    for month in months:
        validation = latest_validation(lake, "joined_month", month) if month in joined else None
        rows.append(
            MonthStatus(
                month=month,
                era_files=era.get(month, 0),
                modis_days=len(modis.get(month, ())),
                ingested=month in ingested,
                joined=month in joined,
                validated=None if validation is None else validation[0],
                report=None if validation is None else validation[1],
                datasets=tuple(datasets.get(month, ())),
                models=tuple(models.get(month, ())),
                complete=month in ledger and month_complete(lake, month),
            )
        )
    return rows


def format_status(lake: Lake, rows: list[MonthStatus], records: list[dict[str, Any]]) -> str:
    """The table of months by stage, then the quarantined datasets with their reasons."""

    def mark(flag: bool | None) -> str:
        return "-" if flag is None else ("yes" if flag else "NO")

    lines = [
        f"Lake {lake.root}",
        f"  {'month':<8} {'raw files':<18} {'ingested':<9} {'joined':<7} {'validated':<10} {'dataset':<22} {'model':<14} complete",
    ]
    for row in rows:
        raw = f"ERA {row.era_files}/2, MODIS {row.modis_days}d"
        lines.append(
            f"  {row.month:<8} {raw:<18} {mark(row.ingested):<9} {mark(row.joined):<7} {mark(row.validated):<10} "
            f"{', '.join(row.datasets) or '-':<22} {', '.join(row.models) or '-':<14} {mark(row.complete)}"
        )
        if row.report:
            lines.append(f"           report: {row.report}")
    if not rows:
        lines.append("  (no months yet: write raw files under raw/, e.g. with `ml4l sample --month YYYY-MM`)")
    if records:
        lines.append("Quarantined:")
        for record in records:
            lines.append(f"  {record['dataset']:<13} {record['key']:<11} since {record['since']}: {record['reason']}")
    debris = find_debris(lake)
    if debris:
        lines.append("Temporaries (a dead run's are swept by the next run of its stage):")
        for item in debris:
            lines.append(f"  {item.kind:<14} {'live' if item.live else 'dead':<5} {item.path}")
    return "\n".join(lines)
