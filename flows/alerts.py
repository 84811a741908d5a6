"""The flow that the ``ml4l.month.quarantined`` automation runs: a report of the month's quarantine for the operator."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from blocks.lake import resolve_lake
from flows.common import MonthParameter
from ml4l import quality


@flow(name="ml4l-quarantine-alert", flow_run_name="quarantined-{month}", log_prints=True)
def quarantine_alert_flow(month: MonthParameter, reason: str = "", lake_root: str | None = None,
                          lake_block: str | None = None) -> list[dict[str, Any]]:
    """Publish the markdown artifact ``quarantined-<month>``: what of ``month`` is quarantined, why, and the reports.

    ``reason`` is the event's (the automation passes it); the artifact lists every record
    of the month (its ERA month, joined month and days), as they stand when this runs.
    """
    lake = resolve_lake(lake_root, lake_block)
    records = [r for r in quality.quarantined(lake) if str(r["key"]).startswith(month)]
    lines = [f"# {month} is quarantined", "", f"Event: {reason or '-'}", "",
             "| dataset | key | since | reason | failed expectations | report |", "|---|---|---|---|---|---|"]
    for r in records:
        failed = ", ".join(f["name"] for f in r["failed"]) or "-"
        lines.append(f"| {r['dataset']} | {r['key']} | {r['since']} | {r['reason']} | {failed} | {r.get('docs') or '-'} |")
    if not records:
        lines.append("| - | - | - | no record left (cleared since?) | - | - |")
    lines += ["", f"Fix the input and re-run the month (`ml4l monthly {month}`) to clear it."]
    create_markdown_artifact(key=f"quarantined-{month}", markdown="\n".join(lines), description=f"{month}: {len(records)} quarantined")
    get_run_logger().warning("%s: %d quarantined: %s", month, len(records), reason)
    return records
