"""The compute profile block: where a flow's tasks run, chosen without editing code.

Every kind sizes its task slots and their threads within the cores given
(:mod:`ml4l.threads`): ``ML4L_THREADS``, else this process's CPU affinity; a
batch job's ``cores``.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from prefect.blocks.core import Block
from pydantic import Field

from ml4l import threads

ComputeKind = Literal["auto", "threads", "dask-local", "dask-cuda", "dask-address", "slurm", "pbs"]
_JOBQUEUE_CLUSTERS = {"slurm": "dask_jobqueue.SLURMCluster", "pbs": "dask_jobqueue.PBSCluster"}


def cuda_devices() -> int:
    """GPUs that dask-cuda can use: 0 without dask-cuda, without NVML or without a GPU."""
    if importlib.util.find_spec("dask_cuda") is None:
        return 0
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:  # no driver, no device: NVML's errors vary by platform
        return 0


class ComputeProfile(Block):
    """Task runner of the pipeline flows: auto (dask-cuda with a GPU, else a Dask LocalCluster), threads,
    an existing scheduler, or Dask workers in SLURM or PBS batch jobs (dask-jobqueue)."""

    _block_type_name = "ml4l Compute Profile"
    _block_type_slug = "ml4l-compute-profile"
    _description = "Task runner for ml4l flows: auto, dask-local, dask-cuda, dask-address, threads, slurm or pbs (dask-jobqueue)."

    kind: ComputeKind = Field(default="auto", description="auto (dask-cuda if dask-cuda and a GPU are there, else dask-local), "
                                                          "threads, dask-local, dask-cuda, dask-address, slurm or pbs.")
    n_workers: int | None = Field(default=None, description="Dask workers (dask-local; default one per core given). One per GPU for dask-cuda.")
    threads_per_worker: int = Field(default=1, description="Threads per Dask worker (dask-local).")
    address: str | None = Field(default=None, description="Scheduler address, e.g. tcp://10.0.0.5:8786 (dask-address).")
    queue: str | None = Field(default=None, description="slurm/pbs: partition or queue.")
    account: str | None = Field(default=None, description="slurm/pbs: account or project charged.")
    jobs: int = Field(default=1, description="slurm/pbs: batch jobs, each running `processes` Dask workers.")
    cores: int = Field(default=4, description="slurm/pbs: cores per job; all the job's threads fit in them.")
    processes: int = Field(default=1, description="slurm/pbs: Dask worker processes per job.")
    memory: str = Field(default="8GiB", description="slurm/pbs: memory per job.")
    walltime: str = Field(default="01:00:00", description="slurm/pbs: wall-clock limit per job.")
    interface: str | None = Field(default=None, description="slurm/pbs: network interface of workers and scheduler, e.g. ib0.")
    job_script_prologue: list[str] = Field(default_factory=list, description="slurm/pbs: shell lines before the worker starts, "
                                                                              "e.g. 'source /path/to/ml4l/.venv/bin/activate'.")
    job_extra_directives: list[str] = Field(default_factory=list, description="slurm/pbs: extra #SBATCH/#PBS options, e.g. --qos=normal.")
    log_directory: str | None = Field(default=None, description="slurm/pbs: where the jobs' output goes.")

    def resolved_kind(self) -> str:
        """``auto`` made concrete: dask-cuda when dask-cuda and a GPU are there, else dask-local."""
        if self.kind == "auto":
            return "dask-cuda" if cuda_devices() > 0 else "dask-local"
        return self.kind

    def jobqueue_kwargs(self) -> dict[str, Any]:
        """Arguments of the dask-jobqueue cluster class (slurm, pbs); each worker process is told its share of the job's cores."""
        per_process = self.cores // self.processes
        sizing = threads.layout(self.processes, per_process, cores=self.cores)
        exports = [f"export {name}={value}" for name, value in threads.worker_env(sizing.threads_per_task).items()]
        kwargs: dict[str, Any] = {
            "cores": self.cores,
            "processes": self.processes,
            "memory": self.memory,
            "walltime": self.walltime,
            "queue": self.queue,
            "job_script_prologue": [*self.job_script_prologue, *exports],
            "job_extra_directives": list(self.job_extra_directives),
            "account": self.account,
            "n_workers": self.jobs * self.processes,
        }
        if self.interface:
            kwargs["interface"] = self.interface
        if self.log_directory:
            kwargs["log_directory"] = self.log_directory
        return kwargs

    def job_script(self) -> str:
        """The batch script one job of this profile submits (slurm, pbs); nothing is submitted."""
        import dask_jobqueue

        cluster_class = getattr(dask_jobqueue, _JOBQUEUE_CLUSTERS[self.kind].rsplit(".", 1)[1])
        kwargs = {**self.jobqueue_kwargs(), "n_workers": 0, "scheduler_options": {"dashboard_address": ":0"}}
        with cluster_class(**kwargs) as cluster:
            return str(cluster.job_script())

    def task_runner(self) -> Any:
        """The Prefect task runner this profile describes."""
        from prefect.task_runners import ThreadPoolTaskRunner

        kind = self.resolved_kind()
        if kind == "threads":
            return ThreadPoolTaskRunner(max_workers=threads.cores_given())
        from prefect_dask import DaskTaskRunner

        if kind == "dask-address":
            if not self.address:
                raise ValueError("compute kind dask-address needs an address")
            return DaskTaskRunner(address=self.address)
        if kind in _JOBQUEUE_CLUSTERS:
            return DaskTaskRunner(cluster_class=_JOBQUEUE_CLUSTERS[kind], cluster_kwargs=self.jobqueue_kwargs())
        if kind == "dask-cuda":
            gpus = self.n_workers or cuda_devices() or 1
            sizing = threads.layout(gpus, self.threads_per_worker)
            return DaskTaskRunner(cluster_class="dask_cuda.LocalCUDACluster",
                                  cluster_kwargs={"n_workers": gpus, "threads_per_worker": sizing.threads_per_worker,
                                                  "env": threads.worker_env(sizing.threads_per_task)})
        sizing = threads.layout(self.n_workers, self.threads_per_worker)
        kwargs: dict[str, Any] = {"n_workers": sizing.workers, "threads_per_worker": sizing.threads_per_worker,
                                  "env": threads.worker_env(sizing.threads_per_task)}
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)


def resolve_compute(compute: str | None = None, compute_block: str | None = None) -> ComputeProfile:
    """The profile from a parameter (a kind, or a ``tcp://`` scheduler address), else a saved block, else the default."""
    if compute:
        if "://" in compute:
            return ComputeProfile(kind="dask-address", address=compute)
        return ComputeProfile(kind=compute)  # type: ignore[arg-type]
    if compute_block:
        return ComputeProfile.load(compute_block)  # type: ignore[return-value]
    return ComputeProfile()
