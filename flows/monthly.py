"""The monthly pipeline (ingest, join with validation, predict) and the backfill that runs it over a month range."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from blocks.compute import resolve_compute
from blocks.lake import resolve_lake
from blocks.mlflow import resolve_tracking
from flows.common import MonthParameter
from flows.ingest import ingest_flow
from flows.join import join_flow
from flows.predict import predict_flow
from ml4l import status
from ml4l.config import check_month
from ml4l.train import champion_version


@flow(name="ml4l-monthly", log_prints=True)
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
    month = check_month(month) if month else status.previous_month(flow_run.scheduled_start_time)
    lake = resolve_lake(lake_root, lake_block)
    runner = resolve_compute(compute, compute_block).task_runner()
    with lake.lock(f"month-{month}"):
        if not force and status.month_complete(lake, month):
            print(f"{month} is complete and valid ({status.ledger_path(lake, month)}); skipped (force=True recomputes it)")
            return {"month": month, "skipped": True}
        status.forget(lake, month)
        swept = status.sweep(lake, month)  # debris of a run killed mid-month; the lock says no one else is writing it
        if swept:
            print(f"removed {len(swept)} leftovers of an interrupted run of {month}: {', '.join(swept)}")
        ingest_flow.with_options(task_runner=runner)(recipe=recipe, months=[month], refresh_constants=force, lake_root=lake.root)
        joined = join_flow.with_options(task_runner=runner)(recipe=recipe, months=[month], lake_root=lake.root)
        predicted = None
        uri, model_name = resolve_tracking(lake, mlflow_block)
        if predict and champion_version(model_name, uri) is not None:
            predicted = predict_flow.with_options(task_runner=runner)(recipe=recipe, months=[month], lake_root=lake.root,
                                                                      mlflow_block=mlflow_block)[month]
        record = {"joined": joined[month], "predictions": predicted, "flow_run": str(flow_run.id)}
        path = status.mark_complete(lake, month, record)
    print(f"{month} complete -> {path}")
    return {"month": month, "skipped": False, **record}


@flow(name="ml4l-backfill", log_prints=True)
def backfill_flow(
    start: MonthParameter,
    end: MonthParameter,
    recipe: str = "demo",
    force: bool = False,
    max_concurrent_months: int = 2,
    predict: bool = True,
    compute: str | None = None,
    compute_block: str | None = None,
    lake_root: str | None = None,
    lake_block: str | None = None,
    mlflow_block: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the monthly pipeline for every month from ``start`` to ``end``, at most ``max_concurrent_months`` at once.

    Months already complete and valid are skipped, so a stopped backfill resumes
    where it stopped; ``force`` recomputes them. A failed month does not stop the
    others; the flow fails at the end, naming it.
    """
    if max_concurrent_months < 1:
        raise ValueError("max_concurrent_months must be at least 1")
    months = status.month_range(start, end)
    lake = resolve_lake(lake_root, lake_block)
    logger = get_run_logger()

    def run(month: str) -> dict[str, Any]:
        return monthly_flow(month=month, recipe=recipe, force=force, predict=predict, compute=compute, compute_block=compute_block,
                            lake_root=lake.root, mlflow_block=mlflow_block)

    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max_concurrent_months) as pool:
        futures = {month: pool.submit(run, month) for month in months}
        for month, future in futures.items():
            try:
                results[month] = future.result()
            except Exception as exc:  # report every month, then fail
                failures[month] = str(exc)
                logger.error("%s failed: %s", month, exc)
    done = [m for m, r in results.items() if not r["skipped"]]
    skipped = [m for m, r in results.items() if r["skipped"]]
    print(f"backfill {start}..{end}: {len(done)} computed, {len(skipped)} already complete, {len(failures)} failed")
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(months)} months failed: " + "; ".join(f"{m}: {e}" for m, e in failures.items()))
    return results
