"""Validation of a full-size joined month against the join's compute, in wall and CPU seconds, in one run.

The month is ``bench_validation.py``'s: one 1/30-degree MODIS hour joined to N320,
repeated for the 744 hours of a 31-day month (8.4M rows x 59 columns). Printed:

- the join's compute for the month (nearest + threshold + group-by of one hour, x 744);
- ``ml4l.quality.validate`` of the month (``joined_month`` suite, Data Docs page included),
  which validates the rows that decide each expectation plus a seeded sample
  (:mod:`ml4l.validation_sample`), and of that the search for those rows;
- the ratio validation / join compute (goal: <= 0.3).

CPU seconds (this process, all its threads) are given beside wall seconds: on a
shared machine they say what the work costs when the wall clock does not.

    .venv/bin/python -m benchmarks.bench_validation_month
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.bench_join import modis_hour
from benchmarks.bench_validation import HOURS, joined_month
from ml4l.grids import grid
from ml4l.join import reduce_pixels
from ml4l.lake import Lake
from ml4l.nearest import nearest
from ml4l.quality import joined_month_parameters, load_suite, validate
from ml4l.validation_sample import witness_rows


def timed(work: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``work()`` over ``repeats`` runs, and its last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    lat, lon, lst, utc = modis_hour(1 / 30)
    g = grid("N320")
    hour = np.floor(utc + 0.5).astype(np.int64)

    def join_hour() -> Any:
        cell, distance = nearest(g, lat, lon, "grid")
        close = distance <= 50.0
        return reduce_pixels(hour[close], cell[close], lst[close], distance[close], g.size)

    hour_rows = join_hour()  # warm-up (numba compilation)
    join_wall, join_cpu, _ = timed(join_hour, max(args.repeats, 5))
    table = joined_month(hour_rows, np.random.default_rng(0))
    parameters = joined_month_parameters(50.0)
    search_wall, search_cpu, rows = timed(lambda: witness_rows(table, len(table), load_suite("joined_month"), parameters), args.repeats)
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        validate(lake, "joined_month", "warm-up", table.iloc[:1000], parameters)
        runs = iter(range(args.repeats))
        valid_wall, valid_cpu, outcome = timed(lambda: validate(lake, "joined_month", f"2019-01-run{next(runs)}", table, parameters), args.repeats)
    assert outcome.success, outcome.summary()
    print(f"joined month at full size: N320, {HOURS} hours, {len(table):,} rows x {table.shape[1]} columns, "
          f"{len(load_suite('joined_month')['expectations'])} expectations; median of {args.repeats}")
    print(f"  {'step':<58} {'wall s':>8} {'CPU s':>8}")
    print(f"  {'join compute (nearest+threshold+group-by) x ' + str(HOURS) + ' h':<58} {join_wall * HOURS:>8.1f} {join_cpu * HOURS:>8.1f}")
    print(f"  {'validation of the month (Data Docs page included)':<58} {valid_wall:>8.1f} {valid_cpu:>8.1f}")
    print(f"  {f'  of which: finding the {len(rows):,} rows that decide it':<58} {search_wall:>8.1f} {search_cpu:>8.1f}")
    print(f"  rows validated: {outcome.rows_validated:,} of {outcome.rows:,}")
    print(f"  validation / join compute: {valid_wall / (join_wall * HOURS):.3f} wall, {valid_cpu / (join_cpu * HOURS):.3f} CPU")


if __name__ == "__main__":
    main()
