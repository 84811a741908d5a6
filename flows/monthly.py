"""The monthly pipeline (ingest, join with validation, predict) and the backfill that starts it once per month.

Runs are named for what they do: ``monthly-YYYY-MM`` and ``backfill-YYYY-MM..YYYY-MM``. A
backfill starts each month as a flow run of the monthly deployment, a child of its own run:
the UI shows, retries and cancels each month, cancelling the backfill cancels its months,
and how many months run at once is the monthly deployment's concurrency limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from prefect.states import Cancelled, Cancelling

from blocks.compute import resolve_compute
from blocks.lake import resolve_lake
from blocks.mlflow import resolve_tracking
from flows.common import MonthParameter, data_docs_refreshed, one_cluster
from flows.ingest import ingest_flow
from flows.join import join_flow
from flows.predict import predict_flow
from ml4l.usecases.lst import status
from ml4l.config import check_month
from ml4l.lake import Lake
from ml4l.usecases.lst.train import champion_version
from ml4l.types import Month

MONTHLY_DEPLOYMENT = "ml4l-monthly/monthly"
BACKFILL_DEPLOYMENT = "ml4l-backfill/backfill"
FINAL = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]


def scheduled_month() -> Month:
    """The run's ``month``, or the month before its scheduled time (a schedule early in a month processes the one before)."""
    month = flow_run.parameters.get("month")
    return check_month(month) if month else status.previous_month(flow_run.scheduled_start_time)


def monthly_run_name() -> str:
    return f"monthly-{scheduled_month()}"


def backfill_run_name() -> str:
    return f"backfill-{flow_run.parameters['start']}..{flow_run.parameters['end']}"


@flow(name="ml4l-monthly", log_prints=True, flow_run_name=monthly_run_name)
def monthly_flow(
    month: MonthParameter | None = None,
    recipe: str = "demo",
    force: bool = False,
    predict: bool = True,
    compute: str | None = None,
    compute_block: str | None = None,
    lake_root: str | None = None,
    lake_block: str | None = None,
    mlflow_block: str | None = None,
) -> dict[str, Any]:
    """Ingest, join (validated both ways) and, if a champion is registered, predict one month.

    ``month`` defaults to the month before the run's scheduled time, so a schedule
    early in each month processes the month that just ended. A month already
    complete and valid is skipped unless ``force``. One pipeline per month at a
    time: a second run of the same month waits, then finds it complete.
    """
    month = scheduled_month()
    lake = resolve_lake(lake_root, lake_block)
    with lake.lock(f"month-{month}"):
        if not force and status.month_complete(lake, month):
            print(f"{month} is complete and valid ({status.ledger_path(lake, month)}); skipped (force=True recomputes it)")
            return {"month": month, "skipped": True}
        status.forget(lake, month)
        swept = status.sweep(lake, month)  # debris of a run killed mid-month; the lock says no one else is writing it
        if swept:
            print(f"removed {len(swept)} leftovers of an interrupted run of {month}: {', '.join(swept)}")
        with data_docs_refreshed(lake), one_cluster(resolve_compute(compute, compute_block).task_runner()) as runner:
            record = _run_month(lake, month, recipe, force, predict, runner, mlflow_block)
        path = status.mark_complete(lake, month, record)
    print(f"{month} complete -> {path}")
    return {"month": month, "skipped": False, **record}


def _run_month(lake: Lake, month: Month, recipe: str, force: bool, predict: bool, runner: Any, mlflow_block: str | None) -> dict[str, Any]:
    """The month's ingest, join and prediction subflows, all on ``runner``; the record of the month's ledger."""
    ingest_flow.with_options(task_runner=runner, flow_run_name=f"ingest-{month}")(
        recipe=recipe, months=[month], refresh_constants=force, lake_root=lake.root)
    joined = join_flow.with_options(task_runner=runner, flow_run_name=f"join-{month}")(recipe=recipe, months=[month], lake_root=lake.root)
    predicted = None
    uri, model_name = resolve_tracking(lake, mlflow_block)
    if predict and champion_version(model_name, uri) is not None:
        predicted = predict_flow.with_options(task_runner=runner, flow_run_name=f"predict-{month}")(
            recipe=recipe, months=[month], lake_root=lake.root, mlflow_block=mlflow_block)[month]
    return {"joined": joined[month], "predictions": predicted, "flow_run": str(flow_run.id)}


def cancel_unfinished_months(flow: Any, flow_run: FlowRun, state: Any) -> None:
    """The backfill's ``on_cancellation`` hook: cancel each month's run that has not finished.

    A running month goes to Cancelling (its worker stops it); one still waiting (for the
    deployment's concurrency slot, say) is Cancelled at once, so it cannot take the slot
    a cancelled month frees.
    """
    with get_client(sync_client=True) as client:
        for child in child_runs(client, flow_run.id):
            if child.state is None or child.state.is_final() or child.state.is_cancelling():
                continue
            message = f"its backfill {flow_run.name} was cancelled"
            if child.state.is_running() or child.state.is_pending():
                client.set_flow_run_state(child.id, Cancelling(message=message), force=True)
            else:
                client.set_flow_run_state(child.id, Cancelled(message=message), force=True)


@flow(name="ml4l-backfill", log_prints=True, flow_run_name=backfill_run_name, on_cancellation=[cancel_unfinished_months])
def backfill_flow(
    start: MonthParameter,
    end: MonthParameter,
    recipe: str = "demo",
    force: bool = False,
    predict: bool = True,
    compute: str | None = None,
    compute_block: str | None = None,
    lake_root: str | None = None,
    lake_block: str | None = None,
    mlflow_block: str | None = None,
    monthly_deployment: str = MONTHLY_DEPLOYMENT,
    poll_seconds: float = 5.0,
) -> dict[str, str]:
    """Start a run of the monthly deployment for every month from ``start`` to ``end``, then follow them.

    Months already complete and valid are not started, so a stopped backfill resumes where it
    stopped; ``force`` recomputes them. Each month's run has an idempotency key naming its
    attempt, so a month whose run is still going is not started twice (by a retry of this run
    or another backfill). How many months run at once is the monthly deployment's concurrency
    limit. The table artifact ``backfill-<start>-<end>`` (months x stages) is updated as months
    finish. A failed month does not stop the others; the flow fails at the end, naming it.
    Returns each month's final state (``skipped`` for one already complete).
    """
    months = status.month_range(start, end)
    lake = resolve_lake(lake_root, lake_block)
    logger = get_run_logger()
    given = {"recipe": recipe, "force": force, "predict": predict, "compute": compute, "compute_block": compute_block,
             "lake_root": lake_root, "lake_block": lake_block, "mlflow_block": mlflow_block}
    common = {name: value for name, value in given.items() if value is not None}  # the monthly deployment's defaults hold
    outcome: dict[str, str] = {}
    children: dict[str, FlowRun] = {}
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(monthly_deployment)
        for month in months:
            if not force and status.month_complete(lake, month):
                outcome[month] = "skipped"
                continue
            children[month] = run_deployment(
                deployment.id, parameters={**common, "month": month}, flow_run_name=f"monthly-{month}", timeout=0,
                idempotency_key=f"monthly-{month}-attempt-{_finished_runs(client, deployment.id, month)}", tags=["backfill"])
            logger.info("%s: flow run %s (%s)", month, children[month].name, children[month].id)
        key = f"backfill-{start}-{end}"
        publish_progress(key, lake, months, outcome, children)
        while len(outcome) < len(months):
            time.sleep(poll_seconds)
            finished = False
            for month, child in children.items():
                if month in outcome:
                    continue
                children[month] = client.read_flow_run(child.id)
                state = children[month].state
                if state is not None and state.is_final():
                    outcome[month] = state.name
                    finished = True
                    logger.info("%s: %s%s", month, state.name, f" ({state.message})" if state.message else "")
            if finished:
                publish_progress(key, lake, months, outcome, children)
    failed = {m: s for m, s in outcome.items() if s not in ("Completed", "skipped")}
    done = sum(s == "Completed" for s in outcome.values())
    print(f"backfill {start}..{end}: {done} computed, {len(outcome) - done - len(failed)} already complete, {len(failed)} failed")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(months)} months failed: " + "; ".join(f"{m}: {s}" for m, s in failed.items()))
    return outcome


def _finished_runs(client: Any, deployment_id: Any, month: Month) -> int:
    """How many runs of ``month`` on the deployment have finished: the attempt number of its next run."""
    return len(client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"monthly-{month}"]),
                                      state=FlowRunFilterState(type=FlowRunFilterStateType(any_=FINAL))),
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))))


def publish_progress(key: str, lake: Lake, months: list[Month], outcome: dict[str, str], children: dict[str, FlowRun]) -> None:
    """The backfill's progress as a table artifact: a row per month, its run and state, and how far it got in the lake."""
    stages = {row.month: row for row in status.lake_status(lake)}

    def mark(flag: bool | None) -> str:
        return "-" if flag is None else ("yes" if flag else "no")

    rows = []
    for month in months:
        row = stages.get(month)
        child = children.get(month)
        rows.append({
            "month": month,
            "flow run": child.name if child else "-",
            "state": outcome.get(month) or (child.state.name if child and child.state else "Scheduled"),
            "ingested": mark(row.ingested if row else None),
            "joined": mark(row.joined if row else None),
            "validated": mark(row.validated if row else None),
            "predicted by": ", ".join(row.models) if row and row.models else "-",
            "complete": mark(row.complete if row else None),
        })
    finished = sum(1 for m in months if m in outcome)
    create_table_artifact(key=key, table=rows, description=f"{finished} of {len(months)} months finished")


def child_runs(client: Any, parent_id: UUID) -> list[FlowRun]:
    """The flow runs started by the flow run ``parent_id`` (a backfill's months), by name."""
    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
    return sorted(runs, key=lambda run: run.name)


def follow_backfill(parameters: dict[str, Any], say: Callable[[str], None] = print, poll_seconds: float = 5.0) -> dict[str, str]:
    """Start the backfill deployment with ``parameters`` on the Prefect server, say each month's run as it finishes.

    Returns each month run's final state by name; raises unless the backfill completed
    (a month failed, or someone cancelled it).
    """
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise RuntimeError("a backfill runs on the platform's worker: start it (make up) and set PREFECT_API_URL=http://127.0.0.1:4200/api")
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(BACKFILL_DEPLOYMENT)
        run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        say(f"started {BACKFILL_DEPLOYMENT} (flow run {run.id}); follow it in the Prefect UI, runs/flow-run/{run.id}")
        said: dict[str, str] = {}
        while True:
            run = client.read_flow_run(run.id)
            for child in child_runs(client, run.id):
                state = child.state.name if child.state else "Scheduled"
                if said.get(child.name) != state:
                    said[child.name] = state
                    say(f"  {child.name:<16} {state}")
            if run.state is not None and run.state.is_final():
                break
            time.sleep(poll_seconds)
    say(f"{run.name}: {run.state.name}" + (f" ({run.state.message})" if run.state.message else ""))
    if not run.state.is_completed():
        raise RuntimeError(f"{run.name} {run.state.name.lower()}: {run.state.message}")
    return said
