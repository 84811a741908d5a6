"""The lake grows month by month: a month the recipe never named, run as the monthly schedule runs it, and what a failed month leaves."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import xarray as xr
import yaml

from ml4l.usecases.lst import status
from ml4l.config import Recipe
from ml4l.era_store import complete_months
from ml4l.join import join_month, read_joined
from ml4l.lake import Lake
from ml4l.quality import quarantined
from ml4l.variables import TIME_VARIABLE
from test_era_store import file_digests

REPO = Path(__file__).resolve().parents[1]
NEW_MONTH = "2019-04"
VARIABLES = {v.name for v in TIME_VARIABLE}


def monthly_cron() -> tuple[str, str]:
    """The cron and time zone of the monthly deployment, as ``prefect.yaml`` schedules it."""
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    (schedule,) = next(d for d in deployments if d["name"] == "monthly")["schedules"]
    return schedule["cron"], schedule["timezone"]


def next_run_after(moment: datetime) -> datetime:
    """The monthly deployment's first scheduled time after ``moment``, computed by Prefect's own scheduler."""
    from prefect.server.schemas.schedules import CronSchedule

    cron, zone = monthly_cron()
    (first,) = asyncio.run(CronSchedule(cron=cron, timezone=zone).get_dates(n=1, start=moment))
    return first


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``ml4l ARGS`` in this process; its exit code, standard output and error."""
    from flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def era_bytes(lake: Lake, months: list[str]) -> dict[str, str]:
    """Digests of the store's chunks, excluding metadata, of the given months' hours."""
    ds = xr.open_zarr(lake.era_timevar)
    hours = pd.DatetimeIndex(ds.time.values)
    slots = {str(i) for i, t in enumerate(hours) if t.strftime("%Y-%m") in months}
    days = {str(i // 24) for i in map(int, slots)}
    chosen = {}
    for path, digest in file_digests(lake).items():
        _, store, name, *key = path.split("/")  # era/timevar.zarr/<array>/<chunk key>: c/<time index>[/0] or c.<time index>.0
        chunk = "/".join(key).replace(".", "/").split("/")
        if store == "timevar.zarr" and chunk[:1] == ["c"] and (name in VARIABLES and chunk[1] in slots or name == "time" and chunk[1] in days):
            chosen[path] = digest
    return chosen


def test_a_scheduled_run_grows_the_lake_by_a_month_the_recipe_never_named(prefect_server, ingested_lake: Lake, tiny_recipe_path: Path) -> None:
    from prefect import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    from flows.monthly import monthly_flow

    lake = ingested_lake
    before = era_bytes(lake, ["2019-01", "2019-02"])
    assert len(before) > 2 * 24 * 15  # every variable's hour chunks and the time chunks of both months
    assert cli("sample", "--month", NEW_MONTH, "--recipe", str(tiny_recipe_path), "--lake", lake.root)[0] == 0

    scheduled = next_run_after(datetime(2019, 4, 20, tzinfo=timezone.utc))
    assert (scheduled.year, scheduled.month, scheduled.day) == (2019, 5, 3)
    parameters = {"recipe": str(tiny_recipe_path), "compute": "threads", "lake_root": lake.root}  # no month: the schedule's
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(monthly_flow, parameters=parameters, state=Scheduled(scheduled_time=scheduled))
    result = run_flow(monthly_flow, flow_run=run, parameters=parameters)
    assert result["month"] == NEW_MONTH and not result["skipped"]

    assert complete_months(lake) == ["2019-01", "2019-02", NEW_MONTH]
    hours = pd.DatetimeIndex(xr.open_zarr(lake.era_timevar).time.values)
    assert hours.strftime("%Y-%m").unique().tolist() == ["2019-01", "2019-02", "2019-03", NEW_MONTH]  # March: a hole
    assert era_bytes(lake, ["2019-01", "2019-02"]) == before
    assert len(read_joined(lake, NEW_MONTH)) > 0
    validation = status.latest_validation(lake, "joined_month", NEW_MONTH)
    assert validation is not None and validation[0] and Path(validation[1]).is_file()
    assert status.month_complete(lake, NEW_MONTH)

    (april,) = [row for row in status.lake_status(lake) if row.month == NEW_MONTH]
    assert (april.era_files, april.ingested, april.joined, april.validated, april.complete) == (2, True, True, True, True)
    code, table, _ = cli("status", "--lake", lake.root)
    assert code == 0
    assert f"  {NEW_MONTH}  ERA 2/2" in table and validation[1] in table


def test_a_month_that_fails_exits_non_zero_and_status_gives_the_reason(prefect_server, ingested_lake: Lake, tiny_recipe_path: Path) -> None:
    lake = ingested_lake
    code, _, error = cli("monthly", "2019-05", "--recipe", str(tiny_recipe_path), "--compute", "threads", "--lake", lake.root)
    assert code == 1 and "ml4l monthly: failed" in error
    assert [r["key"] for r in quarantined(lake)] == ["2019-05"]
    code, table, _ = cli("status", "--lake", lake.root)
    assert code == 0
    assert "Quarantined:" in table and "era_month     2019-05" in table and "sfc_unstructured_2019_05.grib" in table


def test_a_failed_ingest_withdraws_the_month_and_the_join_refuses_it(
    prefect_server, ingested_lake: Lake, tiny_recipe: Recipe, tiny_recipe_path: Path
) -> None:
    """Issue 14, finding 3: January's GRIB copied in as February's."""
    lake = ingested_lake
    join_month(lake, "2019-02", tiny_recipe.join)
    joined = Path(lake.joined_table("2019-02")).read_bytes()
    february = {path: Path(path).read_bytes() for path in (lake.era_sfc("2019-02"), lake.era_skin("2019-02"))}
    shutil.copyfile(lake.era_sfc("2019-01"), lake.era_sfc("2019-02"))
    shutil.copyfile(lake.era_skin("2019-01"), lake.era_skin("2019-02"))
    recipe = ("--recipe", str(tiny_recipe_path), "--lake", lake.root)

    assert cli("ingest", "--month", "2019-02", *recipe)[0] == 1
    assert complete_months(lake) == ["2019-01"]
    assert Path(lake.quarantine_record("era_month", "2019-02")).is_file()
    code, _, refusal = cli("join", "--month", "2019-02", *recipe)
    assert code == 1 and "2019-02" in refusal and "ERA ingest" in refusal, refusal
    assert Path(lake.joined_table("2019-02")).read_bytes() == joined  # the published month is left as it was

    for path, content in february.items():  # the right input, re-ingested, lifts the quarantine
        Path(path).write_bytes(content)
    assert cli("ingest", "--month", "2019-02", *recipe)[0] == 0
    assert complete_months(lake) == ["2019-01", "2019-02"]
    assert not Path(lake.quarantine_record("era_month", "2019-02")).exists()
