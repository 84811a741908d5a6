"""Operations in process: the monthly pipeline, resume and force, one Dask cluster per run, overlapping runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from corpus import assert_equals_uninterrupted
from ml4l.usecases.lst import status
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


def test_monthly_runs_are_named_for_their_month_and_start_one_dask_cluster_each(
        prefect_server, raw_lake: Lake, ingested_lake: Lake, tiny_recipe_path: Path, tiny_recipe: Recipe, monkeypatch) -> None:
    """A backfill's months are runs of the monthly deployment (tests/test_platform.py); here, those runs in process."""
    import distributed
    from prefect.client.orchestration import get_client

    from flows.monthly import monthly_flow

    started = []
    create = distributed.LocalCluster.__init__

    def counted(self, *args, **kwargs) -> None:
        started.append(kwargs)
        create(self, *args, **kwargs)

    monkeypatch.setattr(distributed.LocalCluster, "__init__", counted)
    for month in ("2019-01", "2019-02"):
        state = monthly_flow(month=month, recipe=str(tiny_recipe_path), compute="dask-local", lake_root=raw_lake.root, return_state=True)
        assert state.is_completed(), state.message
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(state.state_details.flow_run_id).name == f"monthly-{month}"
    assert len(started) == 2, "one cluster per monthly run, shared by its ingest and join subflows"
    assert_equals_uninterrupted(raw_lake, ingested_lake, ["2019-01", "2019-02"], tiny_recipe.join)


def test_two_overlapping_monthly_runs_at_once_corrupt_nothing(prefect_server, raw_lake: Lake, ingested_lake: Lake, tiny_recipe_path: Path,
                                                              tiny_recipe: Recipe) -> None:
    from flows.monthly import monthly_flow

    outcomes: dict[str, list] = {}

    def run_months(label: str, months: list[str]) -> None:
        outcomes[label] = [monthly_flow(month=m, recipe=str(tiny_recipe_path), compute="threads", lake_root=raw_lake.root,
                                        return_state=True) for m in months]

    threads = [threading.Thread(target=run_months, args=("a", ["2019-01", "2019-02"])),
               threading.Thread(target=run_months, args=("b", ["2019-02"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    states = [state for label in ("a", "b") for state in outcomes[label]]
    assert all(state.is_completed() for state in states), [s.message for s in states]
    february = [outcomes["a"][1].result()["skipped"], outcomes["b"][0].result()["skipped"]]
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


# ---- threads, clusters, MLflow configuration ----


def test_one_setting_sizes_every_pool_within_the_cores_given(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from ml4l import threads

    monkeypatch.delenv("ML4L_THREADS", raising=False)
    assert threads.cores_given() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("ML4L_THREADS", "4")
    assert threads.cores_given() == 4
    assert threads.layout() == threads.Layout(workers=4, threads_per_worker=1, threads_per_task=1)
    assert threads.layout(2) == threads.Layout(2, 1, 2)
    assert threads.layout(1, 2) == threads.Layout(1, 2, 2)
    with pytest.raises(ValueError, match="3 workers x 2 threads exceed the 4 cores given"):
        threads.layout(3, 2)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("ML4L_THREADS", bad)
        with pytest.raises(ValueError, match="ML4L_THREADS must be a positive integer"):
            threads.cores_given()


def test_dask_workers_start_with_their_share_of_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers on two cores: each worker's numba, BLAS and GRIB decoding pools get one thread, not two."""
    from distributed import Client, LocalCluster

    from blocks.compute import ComputeProfile

    monkeypatch.setenv("ML4L_THREADS", "2")
    runner = ComputeProfile(kind="dask-local").task_runner()
    assert runner.cluster_kwargs["n_workers"] == 2 and runner.cluster_kwargs["threads_per_worker"] == 1

    def pools() -> tuple[int, int, str]:
        import os

        import numba

        from ml4l.threads import cores_given

        return cores_given(), numba.config.NUMBA_NUM_THREADS, os.environ["OMP_NUM_THREADS"]

    with LocalCluster(**runner.cluster_kwargs, dashboard_address=None) as cluster, Client(cluster) as client:
        assert sorted(client.run(pools).values()) == [(1, 1, "1"), (1, 1, "1")]


def test_auto_runs_on_dask_cuda_only_when_dask_cuda_and_a_gpu_are_there() -> None:
    from blocks.compute import ComputeProfile, cuda_devices

    expected = "dask-cuda" if cuda_devices() > 0 else "dask-local"
    assert ComputeProfile().resolved_kind() == expected
    assert ComputeProfile().task_runner().cluster_class == ("dask_cuda.LocalCUDACluster" if expected == "dask-cuda" else "distributed.LocalCluster")


@pytest.mark.parametrize("kind", ["slurm", "pbs"])
def test_jobqueue_profile_writes_the_batch_script(kind: str) -> None:
    from blocks.compute import ComputeProfile

    profile = ComputeProfile(kind=kind, queue="compute", account="ml4l", cores=8, processes=2, memory="16GiB", walltime="02:30:00",
                             job_script_prologue=["source /opt/ml4l/.venv/bin/activate"], job_extra_directives=["--qos=normal"])
    script = profile.job_script()
    prefix = "#SBATCH" if kind == "slurm" else "#PBS"
    expected = {
        "slurm": ["-p compute", "-A ml4l", "--cpus-per-task=8", "--mem=16G", "-t 02:30:00", "--qos=normal"],
        "pbs": ["-q compute", "-A ml4l", "-l select=1:ncpus=8:mem=16GB", "-l walltime=02:30:00", "--qos=normal"],
    }[kind]
    directives = [line.removeprefix(prefix).strip() for line in script.splitlines() if line.startswith(prefix)]
    assert all(d in directives for d in expected), directives
    lines = script.splitlines()
    worker = next(i for i, line in enumerate(lines) if "distributed.cli.dask_worker" in line)
    assert "--nworkers 2" in lines[worker] and "--nthreads 4" in lines[worker]  # 2 processes x 4 threads = the job's 8 cores
    # the environment comes before the worker starts: each task's own pools get 8 // (2 x 4) = 1 thread
    assert lines.index("source /opt/ml4l/.venv/bin/activate") < lines.index("export ML4L_THREADS=1") < worker
    assert lines.index("export NUMBA_NUM_THREADS=1") < worker


SBATCH = """#!/bin/bash
# sbatch for tests: runs the job script here, in its own session, and prints its id as SLURM does
copy="{jobs}/job-$$.sh"
cp "$1" "$copy"
setsid bash "$copy" > "{jobs}/job-$$.log" 2>&1 < /dev/null &
echo "Submitted batch job $!"
"""
SCANCEL = """#!/bin/bash
kill -TERM -- "-$1" 2>/dev/null || true
"""


@pytest.mark.slow
def test_a_monthly_run_on_workers_in_slurm_jobs(prefect_server, raw_lake: Lake, tiny_recipe_path: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow takes the SLURM profile from its block; the job script it submits starts the workers that run its tasks."""
    from blocks.compute import ComputeProfile
    from flows.monthly import monthly_flow

    bin_dir, jobs = tmp_path / "bin", tmp_path / "jobs"
    bin_dir.mkdir()
    jobs.mkdir()
    for name, text in (("sbatch", SBATCH.format(jobs=jobs)), ("scancel", SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    repo = Path(__file__).resolve().parents[1]
    ComputeProfile(kind="slurm", queue="test", cores=2, processes=1, memory="2GiB", walltime="00:10:00", interface="lo",
                   job_script_prologue=[f"cd {repo}", f"export PYTHONPATH={repo}"]).save("slurm-test", overwrite=True)

    result = monthly_flow(month="2019-02", recipe=str(tiny_recipe_path), compute_block="slurm-test", lake_root=raw_lake.root)
    assert not result["skipped"] and status.month_complete(raw_lake, "2019-02")
    (log,) = jobs.glob("job-*.log")
    assert "Starting Worker" in log.read_text() or "Start worker" in log.read_text(), log.read_text()[-2000:]
    (script,) = jobs.glob("job-*.sh")
    assert "#SBATCH -p test" in script.read_text() and "export ML4L_THREADS=1" in script.read_text()


def test_mlflow_uri_comes_from_the_block_and_a_lake_on_object_storage_needs_one(prefect_server, tmp_path: Path) -> None:
    from blocks.mlflow import MLflowTracking, resolve_tracking

    remote = Lake.at("memory://bucket/lake")  # any fsspec URL that is not a local folder, as s3:// is
    with pytest.raises(ValueError, match="memory://bucket/lake is not a local folder.*ml4l-mlflow-tracking block"):
        resolve_tracking(remote)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MLflowTracking(tracking_uri=uri, model_name="lst-s3").save("remote-lake-mlflow", overwrite=True)
    assert resolve_tracking(remote, "remote-lake-mlflow") == (uri, "lst-s3")
    local = Lake.at(str(tmp_path / "lake"))
    assert resolve_tracking(local) == (f"sqlite:///{tmp_path / 'lake' / 'mlflow' / 'mlflow.db'}", "ml4l-lst")
