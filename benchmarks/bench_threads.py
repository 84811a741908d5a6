"""Two Dask workers on two cores: sized by ``ML4L_THREADS`` they keep pace with one process on both cores; sized from the machine, not.

The work unit is a numba-parallel nearest-point search of ``--pixels`` random pixels on
N320, the join's hot loop; its CPU seconds (spinning threads included) are counted too,
which a busy machine distorts less than wall time. The whole benchmark is pinned to ``--cores`` cores (its CPU
affinity, inherited by the workers), then runs ``--units`` units three ways:

* one process, numba using every core given (the reference);
* two Dask workers of one thread sized by :mod:`ml4l.threads` (``ML4L_THREADS`` = 1 each:
  what :class:`blocks.compute.ComputeProfile` starts);
* two Dask workers each sizing numba from the cores it sees (2 each: the behaviour before).

Times exclude cluster start-up and compilation (each worker runs one unit first).
The modes take turns in rounds (``--repeats``), starting each round with the next mode, so a
change of the machine's load falls on each alike. Printed: each mode's median over the rounds,
and its time relative to the reference *in the same round*, as the median and range of those
ratios: on a busy machine the ratio is the number to read (a ratio near 1 for the sized
workers is "no slowdown"), the absolute times move with the load.

    nice .venv/bin/python -m benchmarks.bench_threads
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

PIXELS = 2_000_000


def unit(pixels: int, seed: int) -> tuple[int, float]:
    """One work unit: the nearest N320 point of ``pixels`` random pixels; returns how many threads numba used and the CPU seconds."""
    import numba

    from ml4l.grids import grid
    from ml4l.nearest import nearest
    from ml4l.threads import cores_given

    numba.set_num_threads(min(cores_given(), numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(-70, 70, pixels), rng.uniform(0, 360, pixels)
    cpu = time.process_time()  # every thread of this process: spinning OpenMP threads count too
    nearest(grid("N320"), lat, lon, "grid")
    return int(numba.get_num_threads()), time.process_time() - cpu


Outcome = tuple[float, int, float]
"""Wall seconds of all units, numba threads per unit, CPU seconds of all units."""


def in_process(units: int, pixels: int) -> Outcome:
    unit(1000, 0)
    start = time.perf_counter()
    used = [unit(pixels, seed) for seed in range(units)]
    return time.perf_counter() - start, used[0][0], sum(u[1] for u in used)


def on_workers(units: int, pixels: int, env: dict[str, str]) -> Outcome:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, env=env, dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(unit, 1000, 0)  # compile and load on every worker
        start = time.perf_counter()
        used = client.gather(client.map(unit, [pixels] * units, range(units), pure=False))
        return time.perf_counter() - start, used[0][0], sum(u[1] for u in used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--pixels", type=int, default=PIXELS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cores)
    os.environ.pop("ML4L_THREADS", None)
    from ml4l.threads import layout, worker_env

    sizing = layout(2, 1, cores=len(cores))
    modes = {
        f"one process, numba {len(cores)} threads": lambda: in_process(args.units, args.pixels),
        "2 workers x 1 thread, ML4L_THREADS sized": lambda: on_workers(args.units, args.pixels, worker_env(sizing.threads_per_task)),
        "2 workers x 1 thread, each sized from the cores": lambda: on_workers(args.units, args.pixels, worker_env(len(cores))),
    }
    print(f"{args.units} units of {args.pixels:,} pixels on N320, pinned to cores {cores}, {args.repeats} rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    labels = list(modes)
    results: dict[str, list[Outcome]] = {label: [] for label in labels}
    for round_ in range(args.repeats):
        for label in labels[round_ % len(labels):] + labels[: round_ % len(labels)]:  # each round starts with the next mode
            results[label].append(modes[label]())
        walls = ", ".join(f"{results[label][-1][0]:.2f}" for label in labels)
        print(f"  round {round_ + 1}: {walls} s, load average {os.getloadavg()[0]:.1f}")
    reference = [r[0] for r in results[labels[0]]]
    print(f"  {'mode':<48} {'numba threads':>13} {'median s':>8} {'units/s':>8} {'CPU s/unit':>10} {'/ reference (range)':>20}")
    for label, runs in results.items():
        seconds, cpu = statistics.median(r[0] for r in runs), statistics.median(r[2] for r in runs)
        ratios = [r[0] / ref for r, ref in zip(runs, reference, strict=True)]  # paired within a round
        ratio = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"  {label:<48} {runs[0][1]:>13} {seconds:>8.2f} {args.units / seconds:>8.2f} {cpu / args.units:>10.3f} {ratio:>20}")
    sized, unsized = ([r[0] for r in results[label]] for label in labels[1:])
    paired = [u / s for u, s in zip(unsized, sized, strict=True)]
    print(f"  workers sized from the cores / sized by ML4L_THREADS: median {statistics.median(paired):.2f} "
          f"(range {min(paired):.2f}-{max(paired):.2f}); load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
