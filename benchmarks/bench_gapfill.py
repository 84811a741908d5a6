"""Gap-filling throughput on one core: cells of ``gapfill/<model>/lst_filled.zarr`` written per second.

A cube of ``--steps`` x ``--size`` x ``--size`` cells (60% of land cloudy, as the sample cube) is held in
memory; the recipe's MLP architecture (random, seeded weights: speed does not depend on them) with
statistics fitted on the observed cells fills it through :func:`ml4l.usecases.gapfill.fill.write_filled`:
template, neighbourhood features and prediction per time chunk, region writes, swap. The process is pinned
to one core and every thread pool to one thread. Prints cube cells/s and filled (predicted) cells/s,
the median of ``--repeats`` runs.

    .venv/bin/python -m benchmarks.bench_gapfill
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml4l.usecases.gapfill.cube import Cube

THREAD_POOLS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)


def pin_to_one_core() -> None:
    """One core and one thread per pool; NumPy, BLAS and TensorFlow read these when first imported."""
    if "numpy" in sys.modules:
        raise RuntimeError("pin the threads before NumPy is imported")
    for name in THREAD_POOLS:
        os.environ[name] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def synthetic_cube(steps: int, size: int, seed: int) -> Cube:
    """A cube of the right form, 70% land in one block, 60% of land cloudy in blobs of a few cells."""
    import numpy as np
    import pandas as pd

    from ml4l.usecases.gapfill.cube import Cube, eight_day_steps, grid_coords

    rng = np.random.default_rng(seed)
    lat, lon = grid_coords(52.0, -3.0, size, size)
    land = np.zeros((size, size), dtype=bool)
    land[:, : int(0.7 * size)] = True
    t2m = (10 + 8 * rng.standard_normal((steps, size, size))).astype(np.float32)
    lst = (t2m + 275 + rng.standard_normal((steps, size, size))).astype(np.float32)
    cloudy = rng.random((steps, size // 4 + 1, size // 4 + 1)) < 0.6
    blobs = np.repeat(np.repeat(cloudy, 4, axis=1), 4, axis=2)[:, :size, :size]
    lst[blobs | ~land[None]] = np.nan
    return Cube(
        "synthetic",
        eight_day_steps(pd.Timestamp("2019-01-01"), 2)[:steps],
        lat,
        lon,
        lst,
        t2m,
        rng.uniform(0, 1000, (size, size)).astype(np.float32),
        rng.integers(0, 4, (size, size)).astype(np.int8),
        land,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=46)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pin_to_one_core()
    import numpy as np

    from ml4l.lake import Lake
    from ml4l.ml.trainer import import_keras, mlp
    from ml4l.usecases.gapfill.dataset import FEATURES, fit_statistics, held_out_samples
    from ml4l.usecases.gapfill.fill import write_filled
    from ml4l.usecases.gapfill.model import MlpFiller
    from ml4l.usecases.gapfill.recipe import GapfillRecipe

    recipe = GapfillRecipe()
    cube = synthetic_cube(args.steps, args.size, seed=1)
    labels = np.zeros(cube.shape, dtype=np.int8)  # every cell "train": only the statistics need rows
    rows = held_out_samples(cube, labels, recipe.features.radius, seed=0).train
    import_keras().utils.set_random_seed(0)
    model = MlpFiller(mlp(len(FEATURES), recipe.model.hidden), *fit_statistics(rows))
    seconds, report = [], None
    with tempfile.TemporaryDirectory() as scratch:
        lake = Lake(scratch)
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = write_filled(
                lake, cube, model, "mlp", recipe.model_dump_json(), recipe.features.radius, recipe.fill.time_chunk
            )
            seconds.append(time.perf_counter() - start)
    assert report is not None
    median = statistics.median(seconds)
    cells = int(np.prod(cube.shape))
    print(
        f"cube {args.steps} x {args.size} x {args.size} = {cells:,} cells, {report.filled_cells:,} filled, "
        f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} core"
    )
    print(f"write_filled: median {median:.2f} s of {[round(s, 2) for s in seconds]}")
    print(f"  {cells / median:,.0f} cube cells/s, {report.filled_cells / median:,.0f} filled cells/s")


if __name__ == "__main__":
    main()
