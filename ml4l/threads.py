"""One setting for every thread pool: ``ML4L_THREADS``, else the cores this process may run on.

Numba, BLAS/OpenMP and the library's own pools (GRIB decoding) each take their
size from :func:`cores_given`. A Dask cluster of ``workers x threads_per_worker``
task slots on ``cores`` cores gives each worker ``ML4L_THREADS = cores // slots``
(:func:`layout`, :func:`worker_env`), so tasks running side by side never start
more threads than the cores the run was given, instead of each sizing itself
from the whole machine.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

THREADS_ENV = "ML4L_THREADS"
_POOL_ENVS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cores_given() -> int:
    """``$ML4L_THREADS`` if set, else the number of cores in this process's CPU affinity (a batch job's allotment)."""
    value = os.environ.get(THREADS_ENV)
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Layout:
    """Dask task slots on the cores given, and the threads each task may use for its own pools."""

    workers: int
    threads_per_worker: int
    threads_per_task: int


def layout(workers: int | None = None, threads_per_worker: int | None = None, cores: int | None = None) -> Layout:
    """Workers (default: one per core) and their threads (default 1) within ``cores`` (default :func:`cores_given`).

    Raises ``ValueError`` if the slots asked for exceed the cores.
    """
    cores = cores or cores_given()
    threads = threads_per_worker or 1
    workers = workers or max(1, cores // threads)
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads per worker must be positive, got {workers} and {threads}")
    if workers * threads > cores:
        raise ValueError(f"{workers} workers x {threads} threads exceed the {cores} cores given ({THREADS_ENV} or the CPU affinity)")
    return Layout(workers, threads, max(1, cores // (workers * threads)))


def worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker process whose tasks may each use ``threads`` threads (numba, BLAS, own pools)."""
    return {name: str(threads) for name in (THREADS_ENV, *_POOL_ENVS)}


def configure() -> int:
    """Size this process's pools from :func:`cores_given` (libraries not loaded yet read the environment); returns it."""
    threads = cores_given()
    for name in _POOL_ENVS:
        os.environ.setdefault(name, str(threads))
    if "numba" in sys.modules:  # already started: its pool cannot grow, but may be used below its size
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return threads
