"""The platform for real: a Prefect server, a process worker, the deployments of prefect.yaml, the MLflow UI, Chromium.

One platform per module, on free ports, with its own PREFECT_HOME and lake. Runs are
triggered through the API (and once from the UI) and executed by the worker.
"""

from __future__ import annotations

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
from deployments.local_platform import Platform
from ml4l import status
from ml4l.config import Recipe
from ml4l.join import read_joined
from ml4l.lake import Lake

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, sample_lake: Lake) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("platform")
    lake = root / "lake"
    shutil.copytree(sample_lake.path("raw"), lake / "raw")
    running = Platform(state_dir=root / "state", lake=lake, prefect_port=free_port(), mlflow_port=free_port(), prefect_home=root / "prefect-home")
    try:
        running.up()
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
    assert {"monthly", "backfill", "era-ingest", "join", "validate", "dataset", "train", "predict", "sample", "demo"} <= names
    with pytest.raises(Exception, match="does not match"):
        client.create_flow_run_from_deployment(monthly.id, parameters={"month": "2019-13"})
    dataset = client.read_deployment_by_name("ml4l-dataset/dataset")
    with pytest.raises(Exception, match="does not match"):
        client.create_flow_run_from_deployment(dataset.id, parameters={"name": "../../etc"})


def test_monthly_deployment_completes_through_a_transient_failure(client: Any, platform: Platform, tiny_recipe_path: Path) -> None:
    """The ERA marker directory is a file at first (a flaky mount, say): the ingest task fails, retries, then succeeds."""
    lake = Lake(str(platform.lake))
    blocker = platform.lake / "era" / "_complete"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    run_id = run_deployment(client, "ml4l-monthly/monthly", {"month": "2019-01", "recipe": str(tiny_recipe_path), "compute": "threads"})

    def clear_after_first_failure() -> None:
        task = task_run_named(client, "ingest-era-2019-01")
        if blocker.exists() and task is not None and task.state is not None and task.state.name == "AwaitingRetry":
            blocker.unlink()

    run = wait_for(client, run_id, while_waiting=clear_after_first_failure)
    assert run.state.is_completed(), run.state.message
    states = [s.name for s in client.read_task_run_states(task_run_named(client, "ingest-era-2019-01").id)]
    assert "AwaitingRetry" in states and "Retrying" in states and states[-1] == "Completed", states
    assert status.month_complete(lake, "2019-01")
    assert len(read_joined(lake, "2019-01")) > 0


def test_backfill_killed_with_its_worker_resumes_to_the_same_outputs(client: Any, platform: Platform, tiny_recipe_path: Path,
                                                                    tiny_recipe: Recipe, ingested_lake: Lake) -> None:
    from prefect.states import Crashed

    lake = Lake(str(platform.lake))
    shutil.rmtree(platform.lake / "status", ignore_errors=True)  # recompute every month
    parameters = {"start": "2019-01", "end": "2019-02", "recipe": str(tiny_recipe_path), "max_concurrent_months": 1,
                  "compute": "threads", "force": False}
    first = run_deployment(client, "ml4l-backfill/backfill", parameters)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not status.month_complete(lake, "2019-01"):  # kill as soon as one month is done and the next has begun
        assert time.monotonic() < deadline, "the first month never completed"
        time.sleep(0.2)
    assert platform.stop("worker", signal.SIGKILL)  # the worker and the flow run it started
    assert not status.month_complete(lake, "2019-02")
    client.set_flow_run_state(first, Crashed(message="worker killed by the test"), force=True)

    platform.start_worker()
    second = wait_for(client, run_deployment(client, "ml4l-backfill/backfill", parameters))
    assert second.state.is_completed(), second.state.message
    assert status.month_complete(lake, "2019-02")

    assert_equals_uninterrupted(lake, ingested_lake, ["2019-01", "2019-02"], tiny_recipe.join)


SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Selenium through Debian's ChromeDriver (``make browser`` installs both)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def clickable(driver: Any, xpath: str, timeout: float = 60.0) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.element_to_be_clickable((By.XPATH, xpath)))


def test_a_run_started_from_the_prefect_ui_completes(client: Any, platform: Platform, browser: Any, tiny_recipe_path: Path) -> None:
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment = client.read_deployment_by_name("ml4l-sample/sample")
    # an operator points the deployment's defaults at the small recipe, then quick-runs it from the UI
    client.update_deployment(deployment.id, DeploymentUpdate(parameters={"recipe": str(tiny_recipe_path), "lake_block": "lake"}))
    started = time.time()

    browser.get(f"{platform.ui_url}/deployments")
    clickable(browser, "//a[contains(@href, '/deployments/deployment/') and normalize-space(.)='monthly']")
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
    clickable(browser, f"//*[contains(normalize-space(.), '{run.name}')]")
    clickable(browser, "//*[normalize-space(text())='Completed']")
    browser.save_screenshot(str(SCREENSHOTS / "prefect-ui-flow-run.png"))
    assert (SCREENSHOTS / "prefect-ui-flow-run.png").stat().st_size > 10_000


def test_mlflow_ui_shows_the_run_its_metrics_model_and_plots(joined_lake: Lake, browser: Any, tmp_path: Path) -> None:
    import json
    import urllib.request

    from ml4l.config import SplitConfig, TrainConfig
    from ml4l.dataset import build_ml_ready
    from ml4l.train import train_and_log

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
