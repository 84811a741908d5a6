"""The local platform: a Prefect server, the ml4l-process pool and its worker, the blocks, the deployments, the MLflow UI.

    python deployments/local_platform.py up      # start everything on 127.0.0.1, deploy, register blocks
    python deployments/local_platform.py down    # stop everything it started
    python deployments/local_platform.py status
    python deployments/local_platform.py automations   # (re)create the automations on $PREFECT_API_URL

The Prefect server keeps its SQLite database under ``$PREFECT_HOME``; for production,
point ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` at PostgreSQL before ``up``
(``postgresql+asyncpg://user:password@host:5432/prefect``). Process ids and logs go to
``--state-dir``; ``down`` stops each process group it recorded there.

``up`` creates two automations: one marks a flow run ``Crashed`` when its heartbeats stop
(the deployments send one every 30 s), one runs the ``quarantine-alert`` deployment on each
``ml4l.month.quarantined`` event.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POOL = "ml4l-process"
SERVICES = ("server", "worker", "mlflow")
HEARTBEAT_AUTOMATION = "ml4l: crash flow runs whose heartbeats stopped"
QUARANTINE_AUTOMATION = "ml4l: month quarantined"
HEARTBEAT_GRACE = timedelta(seconds=90)
"""Three missed heartbeats (prefect.yaml sets one every 30 s, Prefect's minimum) and a run is Crashed."""
FINAL_EVENTS = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}


def create_automations() -> list[str]:
    """(Re)create the platform's automations on the server of ``PREFECT_API_URL``; returns their names.

    Heartbeats: a flow run that sent a heartbeat and then, for ``HEARTBEAT_GRACE``, neither
    another nor a final state, is set ``Crashed`` (its process was killed, or its machine lost).
    Runs without heartbeats (a flow run in a process of its own, not by the worker) are never
    armed, so never crashed by it; nor is a run killed before its first heartbeat, in its first second.
    Quarantine: each ``ml4l.month.quarantined`` event (a failed validation, or unreadable input)
    runs ``ml4l-quarantine-alert/quarantine-alert`` for the event's month.
    """
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState, RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture

    with get_client(sync_client=True) as client:
        alert = client.read_deployment_by_name("ml4l-quarantine-alert/quarantine-alert")
    automations = [
        Automation(
            name=HEARTBEAT_AUTOMATION,
            description="Marks a flow run Crashed when its heartbeats stop: its process was killed or its machine lost.",
            trigger=EventTrigger(
                after={"prefect.flow-run.heartbeat"}, expect={"prefect.flow-run.heartbeat", *FINAL_EVENTS},
                match={"prefect.resource.id": ["prefect.flow-run.*"]}, for_each={"prefect.resource.id"},
                posture=Posture.Proactive, threshold=1, within=HEARTBEAT_GRACE),
            actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                        message=f"no heartbeat for {HEARTBEAT_GRACE.seconds} s: the run's process is gone")],
        ),
        Automation(
            name=QUARANTINE_AUTOMATION,
            description="Each ml4l.month.quarantined event (failed validation or unreadable input) runs the quarantine alert for its month.",
            trigger=EventTrigger(expect={"ml4l.month.quarantined"}, match={"prefect.resource.id": ["ml4l.month.*"]},
                                 for_each={"prefect.resource.id"}, posture=Posture.Reactive, threshold=1),
            actions=[RunDeployment(source="selected", deployment_id=alert.id, parameters={
                "month": {"__prefect_kind": "jinja", "template": "{{ event.resource.name }}"},
                "reason": {"__prefect_kind": "jinja", "template": "{{ event.payload.reason }}"},
            })],
        ),
    ]
    for automation in automations:
        with contextlib.suppress(ValueError):  # not there yet
            Automation.read(name=automation.name).delete()
        automation.create()
    return [a.name for a in automations]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Platform:
    """Where the platform's processes listen and keep their state."""

    state_dir: Path = REPO / ".platform"
    lake: Path = REPO / "lake"
    prefect_port: int = 4200
    mlflow_port: int = 5000
    prefect_home: Path = field(default_factory=lambda: Path(os.environ.get("PREFECT_HOME", REPO / ".prefect")))
    bin_dir: Path = Path(sys.executable).parent
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def env(self) -> dict[str, str]:
        """The environment of every process of the platform, and of clients that talk to it."""
        return {
            **os.environ,
            "PREFECT_HOME": str(self.prefect_home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_API_URL": self.api_url,
            "ML4L_REPO": str(REPO),
            "ML4L_LAKE": str(self.lake),
            "PYTHONUNBUFFERED": "1",
        }

    def _pid_file(self, service: str) -> Path:
        return self.state_dir / f"{service}.pid"

    def _start(self, service: str, command: list[str]) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.state_dir / f"{service}.log", "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen(command, cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._pid_file(service).write_text(str(process.pid))
        self._children[service] = process
        return process.pid

    def _wait(self, service: str, url: str, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} did not answer {url} within {timeout:.0f} s; see {self.state_dir / (service + '.log')}")
            time.sleep(1.0)

    def _run(self, command: list[str]) -> None:
        subprocess.run(command, cwd=REPO, env=self.env(), check=True)

    def start_server(self) -> None:
        self._start("server", [str(self.bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.prefect_port)])
        self._wait("server", f"{self.api_url}/health")

    def start_worker(self) -> int:
        return self._start("worker", [str(self.bin_dir / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"])

    def start_mlflow(self) -> None:
        store = self.lake / "mlflow"
        store.mkdir(parents=True, exist_ok=True)
        self._start("mlflow", [str(self.bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.mlflow_port),
                               "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts")])
        self._wait("mlflow", f"{self.mlflow_url}/health")

    def deploy(self) -> None:
        """Create the work pool, register the blocks, deploy every deployment of prefect.yaml."""
        prefect = str(self.bin_dir / "prefect")
        self._run([prefect, "work-pool", "create", POOL, "--type", "process", "--overwrite"])
        self._run([str(self.bin_dir / "python"), str(REPO / "deployments" / "register_blocks.py"), "--lake", str(self.lake)])
        self._run([prefect, "--no-prompt", "deploy", "--all"])
        self._run([str(self.bin_dir / "python"), str(Path(__file__).resolve()), "automations"])

    def up(self, mlflow: bool = True) -> None:
        """Start the server, deploy, start a worker and (optionally) the MLflow UI."""
        self.lake.mkdir(parents=True, exist_ok=True)
        self.start_server()
        self.deploy()
        self.start_worker()
        if mlflow:
            self.start_mlflow()

    def stop(self, service: str, sig: int = signal.SIGTERM) -> bool:
        """Send ``sig`` to ``service`` and every process it started, then SIGKILL what is left after 20 s.

        The whole tree is signalled, not only the process group: Prefect's worker runs each
        flow run in a session of its own. Returns whether the service was running.
        """
        import psutil

        pid_file = self._pid_file(service)
        if not pid_file.exists():
            return False
        pid = int(pid_file.read_text())
        pid_file.unlink()
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return False
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(sig)
        child = self._children.pop(service, None)
        if child is not None:  # reap our own child, or it lingers as a zombie
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=20)
        _, alive = psutil.wait_procs(tree, timeout=20)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if child is not None:
            child.wait()
        return True

    def down(self) -> None:
        for service in reversed(SERVICES):
            self.stop(service)

    def status(self) -> dict[str, bool]:
        running = {}
        for service in SERVICES:
            pid_file = self._pid_file(service)
            alive = False
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text()), 0)
                    alive = True
                except ProcessLookupError:
                    pass
            running[service] = alive
        return running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status", "automations"])
    parser.add_argument("--lake", type=Path, default=Path(os.environ.get("ML4L_LAKE", REPO / "lake")))
    parser.add_argument("--prefect-port", type=int, default=int(os.environ.get("ML4L_PREFECT_PORT", 4200)))
    parser.add_argument("--mlflow-port", type=int, default=int(os.environ.get("ML4L_MLFLOW_PORT", 5000)))
    parser.add_argument("--state-dir", type=Path, default=REPO / ".platform")
    args = parser.parse_args()
    platform = Platform(state_dir=args.state_dir, lake=args.lake.resolve(), prefect_port=args.prefect_port, mlflow_port=args.mlflow_port)
    if args.action == "up":
        platform.up()
        print(f"Prefect UI  {platform.ui_url}\nMLflow UI   {platform.mlflow_url}\nlake        {platform.lake}\n"
              f"logs        {platform.state_dir}/*.log\nstop with   make down")
    elif args.action == "automations":
        print("created automations: " + ", ".join(create_automations()))
    elif args.action == "down":
        platform.down()
        print("stopped")
    else:
        print(json.dumps(platform.status()))


if __name__ == "__main__":
    main()
