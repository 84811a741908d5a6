"""Operations in process: the monthly pipeline, resume and force, backfills on Dask, overlapping backfills."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from corpus import assert_equals_uninterrupted
from ml4l import status
from ml4l.config import Recipe
from ml4l.lake import Lake


def test_previous_month_of_a_scheduled_time() -> None:
    assert status.previous_month(pd.Timestamp("2026-12-02T03:00", tz="UTC")) == "2026-11"
    assert status.previous_month(pd.Timestamp("2027-01-01T00:30", tz="Europe/Paris")) == "2026-12"  # its own calendar, not UTC's 31 Dec
    assert status.month_range("2019-11", "2020-02") == ["2019-11", "2019-12", "2020-01", "2020-02"]
    with pytest.raises(ValueError, match="before it starts"):
        status.month_range("2020-02", "2019-11")


def test_monthly_pipeline_skips_a_complete_month_and_force_recomputes_it(prefect_server, raw_lake: Lake, tiny_recipe_path: Path) -> None:
    from flows.monthly import monthly_flow

    first = monthly_flow(month="2019-01", recipe=str(tiny_recipe_path), compute="threads", lake_root=raw_lake.root)
    assert not first["skipped"] and status.month_complete(raw_lake, "2019-01")
    assert first["predictions"] is None  # no champion registered yet
    assert monthly_flow(month="2019-01", recipe=str(tiny_recipe_path), compute="threads", lake_root=raw_lake.root)["skipped"]
    # a month whose output went missing is no longer complete
    stamp = Path(status.ledger_path(raw_lake, "2019-01")).stat().st_mtime_ns
    forced = monthly_flow(month="2019-01", recipe=str(tiny_recipe_path), force=True, compute="threads", lake_root=raw_lake.root)
    assert not forced["skipped"] and Path(status.ledger_path(raw_lake, "2019-01")).stat().st_mtime_ns > stamp
    (Path(raw_lake.root) / "joined" / "year=2019" / "month=01" / "part-0.parquet").unlink()
    assert not status.month_complete(raw_lake, "2019-01")


def test_backfill_on_a_dask_local_cluster_equals_the_library(prefect_server, raw_lake: Lake, ingested_lake: Lake, tiny_recipe_path: Path,
                                                              tiny_recipe: Recipe) -> None:
    from flows.monthly import backfill_flow

    results = backfill_flow(start="2019-01", end="2019-02", recipe=str(tiny_recipe_path), compute="dask-local", lake_root=raw_lake.root)
    assert sorted(results) == ["2019-01", "2019-02"] and not any(r["skipped"] for r in results.values())
    assert_equals_uninterrupted(raw_lake, ingested_lake, ["2019-01", "2019-02"], tiny_recipe.join)


def test_two_overlapping_backfills_at_once_corrupt_nothing(prefect_server, raw_lake: Lake, ingested_lake: Lake, tiny_recipe_path: Path,
                                                           tiny_recipe: Recipe) -> None:
    from flows.monthly import backfill_flow

    outcomes: dict[str, object] = {}

    def backfill(label: str, start: str, end: str) -> None:
        outcomes[label] = backfill_flow(start=start, end=end, recipe=str(tiny_recipe_path), compute="threads",
                                        lake_root=raw_lake.root, return_state=True)

    threads = [threading.Thread(target=backfill, args=("a", "2019-01", "2019-02")), threading.Thread(target=backfill, args=("b", "2019-02", "2019-02"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    states = {label: outcome for label, outcome in outcomes.items()}
    assert all(state.is_completed() for state in states.values()), {k: v.message for k, v in states.items()}
    february = [states[label].result()["2019-02"]["skipped"] for label in ("a", "b")]
    assert sorted(february) == [False, True]  # computed once; the other run waited, then found it complete
    assert_equals_uninterrupted(raw_lake, ingested_lake, ["2019-01", "2019-02"], tiny_recipe.join)


def test_monthly_pipeline_on_an_existing_dask_scheduler(prefect_server, raw_lake: Lake, tiny_recipe_path: Path) -> None:
    """The compute parameter takes a scheduler address: the tasks run on that cluster's workers."""
    from distributed import Client, LocalCluster

    from flows.monthly import monthly_flow

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        result = monthly_flow(month="2019-02", recipe=str(tiny_recipe_path), compute=cluster.scheduler_address, lake_root=raw_lake.root)
        assert not result["skipped"] and status.month_complete(raw_lake, "2019-02")
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        assert any("ingest" in p for p in prefixes) and any("join" in p for p in prefixes), prefixes
