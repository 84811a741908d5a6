"""The platform for real: a Prefect server, a process worker, the deployments of prefect.yaml, the MLflow UI, Chromium.

One platform per module, on free ports, with its own PREFECT_HOME and lake. Runs are
triggered through the API (and once from the UI) and executed by the worker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from corpus import assert_equals_uninterrupted

from deployments.local_platform import HEARTBEAT_AUTOMATION, HEARTBEAT_GRACE, QUARANTINE_AUTOMATION, Platform
from flows.monthly import MONTHLY_DEPLOYMENT, child_runs
from ml4l.config import Recipe
from ml4l.join import read_joined
from ml4l.lake import Lake
from ml4l.usecases.lst import status

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 600.0
FAULTS = Path(__file__).resolve().parent / "faults"
EIO_SWITCH = "eio-switch"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, sample_lake: Lake) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("platform")
    lake = root / "lake"
    shutil.copytree(sample_lake.path("raw"), lake / "raw")
    running = Platform(state_dir=root / "state", lake=lake, prefect_port=free_port(), mlflow_port=free_port(),
                       prefect_home=root / "prefect-home")
    with pytest.MonkeyPatch.context() as env:  # the worker's flaky mount (tests/faults/sitecustomize.py), off until EIO_SWITCH exists
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])))
        env.setenv("ML4L_EIO_SWITCH", str(root / EIO_SWITCH))
        env.setenv("ML4L_EIO_UNDER", str(lake / "raw" / "ERA_sfc"))  # the hourly months, not the constants
        try:
            running.up(mlflow=False)  # no test here uses its MLflow UI: the MLflow test starts one on its own store
            yield running
        finally:
            running.down()


@pytest.fixture
def client(platform: Platform) -> Iterator[Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: platform.api_url}), get_client(sync_client=True) as api:
        yield api


def run_deployment(client: Any, name: str, parameters: dict[str, Any]) -> UUID:
    deployment = client.read_deployment_by_name(name)
    return client.create_flow_run_from_deployment(deployment.id, parameters=parameters).id


def wait_for(client: Any, run_id: UUID, timeout: float = RUN_TIMEOUT, while_waiting: Callable[[], None] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        if while_waiting is not None:
            while_waiting()
        time.sleep(1.0)
    raise TimeoutError(f"flow run {run_id} not finished after {timeout:.0f} s: {client.read_flow_run(run_id).state}")


def task_run_named(client: Any, name: str) -> Any | None:
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    found = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[name])))
    return found[0] if found else None


def test_deployments_have_validated_parameters_and_a_monthly_schedule(client: Any) -> None:
    monthly = client.read_deployment_by_name("ml4l-monthly/monthly")
    assert [s.schedule.cron for s in monthly.schedules] == ["0 6 3 * *"]
    names = {d.name for d in client.read_deployments()}
    assert {"monthly", "backfill", "era-ingest", "join", "validate", "dataset", "train", "predict", "sample", "demo",
            "quarantine-alert"} <= names
    assert monthly.global_concurrency_limit is not None and monthly.global_concurrency_limit.limit == 2
    assert {HEARTBEAT_AUTOMATION, QUARANTINE_AUTOMATION} <= {a.name for a in client.read_automations()}
    with pytest.raises(Exception, match="does not match"):
        client.create_flow_run_from_deployment(monthly.id, parameters={"month": "2019-13"})
    dataset = client.read_deployment_by_name("ml4l-dataset/dataset")
    with pytest.raises(Exception, match="does not match"):
        client.create_flow_run_from_deployment(dataset.id, parameters={"name": "../../etc"})


def test_monthly_deployment_completes_through_a_transient_failure(client: Any, platform: Platform, tiny_recipe_path: Path) -> None:
    """The mount of the hourly raw ERA files answers EIO at first (tests/faults): the ingest task fails, is retried, then succeeds."""
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId

    lake = Lake(str(platform.lake))
    switch = platform.state_dir.parent / EIO_SWITCH
    switch.touch()
    try:
        run_id = run_deployment(client, "ml4l-monthly/monthly", {"month": "2019-01", "recipe": str(tiny_recipe_path), "compute": "threads"})

        def mount_recovers_after_first_failure() -> None:
            task = task_run_named(client, "ingest-era-2019-01")
            if switch.exists() and task is not None and task.state is not None and task.state.name == "AwaitingRetry":
                switch.unlink()

        run = wait_for(client, run_id, while_waiting=mount_recovers_after_first_failure)
    finally:
        switch.unlink(missing_ok=True)
    assert run.state.is_completed(), run.state.message
    task = task_run_named(client, "ingest-era-2019-01")
    states = [s.name for s in client.read_task_run_states(task.id)]
    assert states.count("AwaitingRetry") == 1 and "Retrying" in states and states[-1] == "Completed", states
    retried = wait_until("the task's log of its retry", lambda: [log.message for log in client.read_logs(
        LogFilter(task_run_id=LogFilterTaskRunId(any_=[task.id]))) if "Retry 1/" in log.message], timeout=30)
    assert "OSError(5, 'Input/output error')" in retried[0], retried  # retried for the EIO, once
    assert status.month_complete(lake, "2019-01")
    assert len(read_joined(lake, "2019-01")) > 0


def wait_until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` every second until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(1.0)
    return found


def heartbeat_seconds(client: Any, deployment: str) -> float:
    """How often ``deployment``'s flow runs send a heartbeat: the job variable that prefect.yaml gives them."""
    return float(client.read_deployment_by_name(deployment).job_variables["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])


def cancellation_bound() -> float:
    """How long the worker may take to stop a Cancelling run: its poll for cancellations (the fallback when it
    misses the event), the 30 s it grants the run's process to exit, then the cancellation hooks; doubled for load."""
    from prefect.settings import get_current_settings

    return 2 * (get_current_settings().worker.cancellation_poll_seconds + 30 + 30)


def set_monthly_concurrency(client: Any, limit: int) -> None:
    from prefect.client.schemas.actions import DeploymentUpdate

    client.update_deployment(client.read_deployment_by_name(MONTHLY_DEPLOYMENT).id, DeploymentUpdate(concurrency_limit=limit))


def test_a_killed_backfill_is_crashed_by_its_missing_heartbeats_and_resumes_to_the_same_outputs(
        client: Any, platform: Platform, tiny_recipe_path: Path, tiny_recipe: Recipe, ingested_lake: Lake, capsys: Any) -> None:
    """A backfill starts a named child run per month; SIGKILL of the worker leaves no run Running for long."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterName
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main

    lake = Lake(str(platform.lake))
    shutil.rmtree(platform.lake / "status", ignore_errors=True)  # recompute every month
    parameters = {"start": "2019-01", "end": "2019-02", "recipe": str(tiny_recipe_path), "compute": "threads", "force": False}
    # Both months run at once (the deployment's limit is 2): which of two waiting runs gets a single slot first is
    # Prefect's choice, and February holding the only slot on its lock would starve January
    try:
        with lake.lock("month-2019-02"):  # February's run, once started, waits on the month's lock: it is running when killed
            first = run_deployment(client, "ml4l-backfill/backfill", parameters)
            wait_until("January complete", lambda: status.month_complete(lake, "2019-01"), RUN_TIMEOUT)
            children = wait_until("February's run started", lambda: len(child_runs(client, first)) == 2 and child_runs(client, first),
                                  RUN_TIMEOUT)
            assert [c.name for c in children] == ["monthly-2019-01", "monthly-2019-02"]
            assert client.read_flow_run(first).name == "backfill-2019-01..2019-02"

            def february_heartbeats() -> list[Any]:  # a new filter each time: its time window ends when it is made
                heartbeats = EventFilter(event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                                         resource=EventResourceFilter(id=[f"prefect.flow-run.{children[1].id}"]))
                return client.read_events(heartbeats, limit=10).events

            wait_until("February's first heartbeat", february_heartbeats, RUN_TIMEOUT)
            killed = time.monotonic()
            assert platform.stop("worker", signal.SIGKILL)  # the worker and the flow runs it started; nobody reports their end
        assert not status.month_complete(lake, "2019-02")

        # the heartbeat automation of `make up`, not the test, marks both runs Crashed: a heartbeat interval (the last
        # one may have just been sent), the grace, the server's periodic evaluation; doubled for a loaded machine
        every = heartbeat_seconds(client, "ml4l-backfill/backfill")
        crash_bound = 2 * (every + HEARTBEAT_GRACE.total_seconds() + 30)
        for run_id in (first, children[1].id):
            run = wait_until("Crashed by the heartbeat automation", lambda run_id=run_id: (
                (r := client.read_flow_run(run_id)).state.is_crashed() and r), timeout=crash_bound - (time.monotonic() - killed))
            assert "no heartbeat" in run.state.message
        crashed_after = time.monotonic() - killed

        platform.start_worker()
        with temporary_settings(updates={PREFECT_API_URL: platform.api_url}):  # `ml4l backfill` starts and follows the deployment
            assert main(["backfill", "2019-01", "2019-02", "--recipe", str(tiny_recipe_path), "--compute", "threads"]) == 0
    finally:
        set_monthly_concurrency(client, 2)
    said = capsys.readouterr().out
    with capsys.disabled():
        print(f"\nboth runs Crashed {crashed_after:.0f} s after the kill "
              f"(heartbeat every {every:.0f} s, grace {HEARTBEAT_GRACE.seconds} s, bound {crash_bound:.0f} s)")
    assert re.search(r"monthly-2019-02 +Completed", said) and "backfill-2019-01..2019-02: Completed" in said, said
    second = max(client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["backfill-2019-01..2019-02"]))),
                 key=lambda run: run.created)
    assert second.state.is_completed() and second.id != first
    resumed = child_runs(client, second.id)
    assert [(c.name, c.state.name) for c in resumed] == [("monthly-2019-02", "Completed")], "January, complete, is not run again"
    assert resumed[0].idempotency_key == "monthly-2019-02-attempt-1", "the crashed run was attempt 0"
    assert status.month_complete(lake, "2019-02")
    progress = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backfill-2019-01-2019-02"])))
    latest = max(progress, key=lambda a: a.created)
    assert [(row["month"], row["state"], row["complete"]) for row in json.loads(latest.data)] == [
        ("2019-01", "skipped", "yes"), ("2019-02", "Completed", "yes")], latest.data

    assert_equals_uninterrupted(lake, ingested_lake, ["2019-01", "2019-02"], tiny_recipe.join)


def test_cancelling_a_backfill_cancels_its_months(client: Any, platform: Platform, tiny_recipe_path: Path) -> None:
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelling

    parameters = {"start": "2019-01", "end": "2019-02", "recipe": str(tiny_recipe_path), "compute": "threads", "force": True}
    lake = Lake(str(platform.lake))
    set_monthly_concurrency(client, 1)  # one month waits for the other's slot: it is still to run when the backfill is cancelled
    try:
        # the month that starts first waits on its lock: it cannot finish before the cancellation reaches it
        with lake.lock("month-2019-01"), lake.lock("month-2019-02"):
            parent = run_deployment(client, "ml4l-backfill/backfill", parameters)
            children = wait_until("both months started", lambda: len(child_runs(client, parent)) == 2 and child_runs(client, parent),
                                  RUN_TIMEOUT)
            client.set_flow_run_state(parent, Cancelling(message="cancelled by the test"))
            assert wait_for(client, parent, timeout=cancellation_bound()).state.is_cancelled()
            # the parent's hook sets the running month Cancelling: the worker stops it the same way
            finished = [wait_until(f"{child.name} cancelled", lambda child=child: (
                (r := client.read_flow_run(child.id)).state.is_final() and r), timeout=cancellation_bound()) for child in children]
            for run in finished:
                assert run.state.type == StateType.CANCELLED, f"{run.name}: {run.state.name} {run.state.message}"
            # the month still waiting for its slot was cancelled by the backfill's hook, before it could take the slot
            assert "its backfill backfill-2019-01..2019-02 was cancelled" in [r.state.message for r in finished], finished
    finally:
        set_monthly_concurrency(client, 2)


def test_a_quarantined_month_emits_events_and_the_automation_reacts(client: Any, platform: Platform, tiny_recipe_path: Path,
                                                                      sample_lake: Lake) -> None:
    from corpus import change_values
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterName
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.validate import validate_flow

    lake = Lake(str(platform.lake))
    change_values(lake.era_sfc("2019-02"), "2t", lambda v: v - 273.15)  # Celsius where Kelvin is expected
    try:
        with temporary_settings(updates={PREFECT_API_URL: platform.api_url}):
            state = validate_flow(recipe=str(tiny_recipe_path), months=["2019-02"], lake_root=lake.root, return_state=True)
        assert state.is_failed() and "t2m_minimum_in_range" in state.message

        def events(name: str) -> list[Any]:
            return client.read_events(EventFilter(event=EventNameFilter(name=[name]),
                                                  resource=EventResourceFilter(id=["ml4l.month.2019-02"])), limit=10).events

        for name in ("ml4l.validation.failed", "ml4l.month.quarantined"):
            found = wait_until(f"event {name}", lambda name=name: events(name), timeout=60)
            assert found[0].resource["ml4l.dataset"] == "era_month" and found[0].resource.name == "2019-02"
            assert "t2m_minimum_in_range" in found[0].payload["reason"]
        alert = wait_until("the automation's quarantine-alert run", lambda: client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["quarantined-2019-02"]))), timeout=120)[0]
        assert wait_for(client, alert.id).state.is_completed()
        report = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["quarantined-2019-02"])))[0]
        assert "| era_month | 2019-02 |" in report.data and "t2m_minimum_in_range" in report.data
    finally:  # the input is fixed: re-validating clears the quarantine
        shutil.copy(sample_lake.era_sfc("2019-02"), lake.era_sfc("2019-02"))
        with temporary_settings(updates={PREFECT_API_URL: platform.api_url}):
            assert validate_flow(recipe=str(tiny_recipe_path), months=["2019-02"], lake_root=lake.root, return_state=True).is_completed()


SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Selenium through Debian's ChromeDriver (``make browser`` installs both).

    It keeps the page's console, so that a wait that times out can say which script or asset failed.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def clickable(driver: Any, xpath: str, timeout: float = 60.0) -> Any:
    """The element of ``xpath`` once it is visible and enabled; else fail with a screenshot and the page's console errors."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(expected_conditions.element_to_be_clickable((By.XPATH, xpath)))
    except TimeoutException:
        driver.save_screenshot(str(SCREENSHOTS / "timed-out.png"))  # what the page showed instead
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        found = driver.find_elements(By.XPATH, xpath)
        raise AssertionError(f"{xpath} not clickable within {timeout:.0f} s on {driver.current_url} "
                             f"({len(found)} found, displayed: {[e.is_displayed() for e in found]}); "
                             f"console errors: {errors}; screenshot {SCREENSHOTS / 'timed-out.png'}") from None


def showing(text: str) -> str:
    """XPath of the innermost elements of the page's body whose text is ``text``.

    Not ``text()``: Vue leaves empty text nodes before a label, and ``text()`` is the first.
    """
    return f"//body//*[normalize-space(.)='{text}' and not(.//*[normalize-space(.)='{text}'])]"


def test_a_run_started_from_the_prefect_ui_completes(client: Any, platform: Platform, browser: Any, tiny_recipe_path: Path) -> None:
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment = client.read_deployment_by_name("ml4l-sample/sample")
    # an operator points the deployment's defaults at the small recipe, then quick-runs it from the UI
    client.update_deployment(deployment.id, DeploymentUpdate(parameters={"recipe": str(tiny_recipe_path), "lake_block": "lake"}))
    started = time.time()

    browser.get(f"{platform.ui_url}/deployments")  # a page of 10: the operator searches for it
    clickable(browser, "//input[@placeholder='Search deployments...']").send_keys("sample")
    clickable(browser, "//a[contains(@href, '/deployments/deployment/') and normalize-space(.)='sample']").click()
    clickable(browser, "//button[normalize-space(.)='Run']").click()
    clickable(browser, "//button[normalize-space(.)='Quick run']").click()

    deadline = time.monotonic() + 60
    runs: list[Any] = []
    while not runs:
        assert time.monotonic() < deadline, "no flow run appeared after Quick run"
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
        time.sleep(1.0)
    run = wait_for(client, runs[0].id)
    assert run.state.is_completed(), run.state.message
    assert (platform.lake / "raw" / "climate.v020" / "climate.v020.grib").stat().st_mtime > started  # written by this run

    browser.get(f"{platform.ui_url}/runs/flow-run/{run.id}")
    clickable(browser, showing(run.name))
    clickable(browser, showing("Completed"))
    browser.save_screenshot(str(SCREENSHOTS / "prefect-ui-flow-run.png"))
    assert (SCREENSHOTS / "prefect-ui-flow-run.png").stat().st_size > 10_000


def finished_backfill(client: Any, tiny_recipe_path: Path) -> Any:
    """The newest finished backfill of 2019-01..2019-02 that started both months (the SIGKILL or the cancellation
    test's); when this test runs alone, one run now (forced, so both months run, one at a time)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["backfill-2019-01..2019-02"])))
    finished = [r for r in runs if r.state.is_final() and len(child_runs(client, r.id)) == 2]
    if finished:
        return max(finished, key=lambda r: r.created)
    set_monthly_concurrency(client, 1)
    try:
        return wait_for(client, run_deployment(client, "ml4l-backfill/backfill", {
            "start": "2019-01", "end": "2019-02", "recipe": str(tiny_recipe_path), "compute": "threads", "force": True}))
    finally:
        set_monthly_concurrency(client, 2)


def test_the_prefect_ui_shows_a_backfill_and_its_months_by_name(client: Any, platform: Platform, browser: Any,
                                                                tiny_recipe_path: Path) -> None:
    """The backfill's page names it, and its Subflow Runs tab lists each month's run by name (test-output/prefect-ui-backfill.png)."""
    parent = finished_backfill(client, tiny_recipe_path)
    browser.get(f"{platform.ui_url}/runs/flow-run/{parent.id}")
    clickable(browser, showing("backfill-2019-01..2019-02"))
    clickable(browser, "//*[@role='tablist']/li[normalize-space(.)='Subflow Runs']").click()  # the tab, not the narrow-screen <select>
    children = child_runs(client, parent.id)
    assert [child.name for child in children] == ["monthly-2019-01", "monthly-2019-02"]
    for child in children:  # each month's run, linked by its id and shown by its name
        clickable(browser, f"//a[contains(@href, '/runs/flow-run/{child.id}') and normalize-space(.)='{child.name}']")
    browser.save_screenshot(str(SCREENSHOTS / "prefect-ui-backfill.png"))


def test_data_docs_render_offline_and_name_suite_asset_and_month(client: Any, platform: Platform, browser: Any,
                                                               tiny_recipe_path: Path) -> None:
    from ml4l.quality import docs_index

    lake = Lake(str(platform.lake))
    for month in ("2019-01", "2019-02"):  # validated by the tests above; when this test runs alone, by the monthly pipeline now
        if status.latest_validation(lake, "joined_month", month) is None:
            parameters = {"month": month, "recipe": str(tiny_recipe_path), "compute": "threads"}
            run = wait_for(client, run_deployment(client, MONTHLY_DEPLOYMENT, parameters))
            assert run.state.is_completed(), run.state.message
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    try:
        browser.get(docs_index(lake).as_uri())
        # the index is a bootstrap-table filled by JavaScript: rows only exist if jQuery and bootstrap-table loaded.
        # It shows 10 results a page, newest first: each month is found with its search box, as a reader would
        search = clickable(browser, "//input[contains(@class, 'search-input') and @placeholder='Search']", timeout=30)
        for run_name in ("era_month-2019-01", "joined_month-2019-01", "joined_month-2019-02"):
            search.clear()
            search.send_keys(run_name)
            clickable(browser, f"//table//tbody/tr[td[normalize-space(.)='{run_name}']]", timeout=30)
        search.clear()
        search.send_keys("_month-2019-0")  # both months' ERA and joined results, for the screenshot
        clickable(browser, "//table//tbody/tr[td[normalize-space(.)='era_month-2019-02']]", timeout=30)  # once the table shows them
        loaded = browser.execute_script(
            "return [...document.querySelectorAll('script[src], link[rel=stylesheet], img[src]')].map(e => e.src || e.href)")
        assert loaded and all(url.startswith("file://") for url in loaded), [u for u in loaded if not u.startswith("file://")]
        assert any(url.endswith("/static/vendor/bootstrap/dist/css/bootstrap.min.css") for url in loaded), loaded
        # Bootstrap's stylesheet applied: its .table collapses borders, a browser's default table does not
        assert browser.execute_script("return getComputedStyle(document.querySelector('table.table')).borderCollapse") == "collapse"
        browser.save_screenshot(str(SCREENSHOTS / "data-docs-index.png"))

        found = status.latest_validation(lake, "joined_month", "2019-02")
        assert found is not None
        browser.get(Path(found[1]).as_uri())
        header = clickable(browser, "//*[contains(normalize-space(.), 'Data asset:')]", timeout=30).text
        page = browser.find_element("tag name", "body").text
        assert "Expectation Suite: joined_month" in page and "Data asset: joined_month (batch 2019-02)" in page, header
        assert "joined_month-2019-02" in page and "__none__" not in page
        browser.save_screenshot(str(SCREENSHOTS / "data-docs-joined-2019-02.png"))
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})


def test_mlflow_ui_shows_the_run_its_metrics_model_and_plots(joined_lake: Lake, browser: Any, tmp_path: Path) -> None:
    import json
    import urllib.request

    from ml4l.config import SplitConfig, TrainConfig
    from ml4l.usecases.lst.dataset import build_ml_ready
    from ml4l.usecases.lst.train import train_and_log

    build_ml_ready(joined_lake, SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02")))
    trained = train_and_log(joined_lake, config=TrainConfig(epochs=2, batch_size=256), model_name="ui-check")
    server = Platform(state_dir=tmp_path / "state", lake=Path(joined_lake.root), mlflow_port=free_port())
    server.start_mlflow()
    try:
        def api(path: str) -> dict[str, Any]:
            with urllib.request.urlopen(f"{server.mlflow_url}/api/2.0/mlflow/{path}", timeout=30) as response:
                return dict(json.load(response))

        run = api(f"runs/get?run_id={trained.run_id}")["run"]
        assert {m["key"] for m in run["data"]["metrics"]} >= {"test_mae", "baseline_skt_test_mae", "baseline_linear_test_rmse"}
        plots = {f["path"] for f in api(f"artifacts/list?run_id={trained.run_id}&path=plots")["files"]}
        assert "plots/error_map.png" in plots and "plots/learning_curve.png" in plots
        assert api("registered-models/alias?name=ui-check&alias=champion")["model_version"]["run_id"] == trained.run_id

        experiment = run["info"]["experiment_id"]
        browser.get(f"{server.mlflow_url}/#/experiments/{experiment}/runs/{trained.run_id}")
        metric = clickable(browser, "//a[normalize-space(.)='test_mae']", timeout=90)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", metric)
        browser.save_screenshot(str(SCREENSHOTS / "mlflow-ui-run.png"))
        browser.get(f"{server.mlflow_url}/#/experiments/{experiment}/runs/{trained.run_id}/artifacts/plots/error_map.png")
        clickable(browser, "//*[normalize-space(text())='plots/error_map.png']", timeout=90)
        clickable(browser, "//img[starts-with(@src, 'blob:')]", timeout=90)
        time.sleep(2)  # let the image paint before the screenshot
        browser.save_screenshot(str(SCREENSHOTS / "mlflow-ui-error-map.png"))
    finally:
        server.stop("mlflow")
