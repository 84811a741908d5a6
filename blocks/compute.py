"""The compute profile block: where a flow's tasks run, chosen without editing code."""

from __future__ import annotations

from typing import Any, Literal

from prefect.blocks.core import Block
from pydantic import Field

ComputeKind = Literal["threads", "dask-local", "dask-cuda", "dask-address"]


class ComputeProfile(Block):
    """Task runner of the pipeline flows: Dask LocalCluster (default), dask-cuda, an existing scheduler, or threads."""

    _block_type_name = "ml4l Compute Profile"
    _block_type_slug = "ml4l-compute-profile"
    _description = "Task runner for ml4l flows: dask-local (LocalCluster), dask-cuda (LocalCUDACluster), dask-address, or threads."

    kind: ComputeKind = Field(default="dask-local", description="dask-local, dask-cuda, dask-address or threads.")
    n_workers: int | None = Field(default=None, description="Dask workers (dask-local); None: Dask's default. One per GPU for dask-cuda.")
    threads_per_worker: int = Field(default=1, description="Threads per Dask worker (dask-local).")
    address: str | None = Field(default=None, description="Scheduler address, e.g. tcp://10.0.0.5:8786 (dask-address).")

    def task_runner(self) -> Any:
        """The Prefect task runner this profile describes."""
        from prefect.task_runners import ThreadPoolTaskRunner

        if self.kind == "threads":
            return ThreadPoolTaskRunner()
        from prefect_dask import DaskTaskRunner

        if self.kind == "dask-address":
            if not self.address:
                raise ValueError("compute kind dask-address needs an address")
            return DaskTaskRunner(address=self.address)
        if self.kind == "dask-cuda":
            return DaskTaskRunner(cluster_class="dask_cuda.LocalCUDACluster")
        kwargs: dict[str, Any] = {"threads_per_worker": self.threads_per_worker}
        if self.n_workers is not None:
            kwargs["n_workers"] = self.n_workers
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
