"""Time the Great Expectations validation of a full-size joined month against the join itself.

A joined month at full size is built from one 1/30-degree MODIS hour joined to N320
(nearest + group-by, as in ``bench_join.py``), repeated for every hour of a 31-day month
with in-range features, in the joined schema. Printed side by side in one run: the
``joined_month`` suite's validation (``ml4l.quality.validate``, Data Docs included), and
the join's compute for the same month (nearest + threshold + group-by per hour, times
the month's hours), median of ``--repeats``.

    .venv/bin/python benchmarks/bench_validation.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import pandas as pd

from benchmarks.bench_join import modis_hour
from ml4l.grids import grid
from ml4l.join import FEATURE_COLUMNS, joined_schema, reduce_pixels
from ml4l.lake import Lake
from ml4l.nearest import nearest
from ml4l.quality import joined_month_parameters, load_suite, validate

HOURS = 31 * 24


def feature_value(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Values inside the suite's declared range of ``name``."""
    bounds = {e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
              for e in load_suite("joined_month")["expectations"] if e["name"] == f"{name}_in_range"}
    low, high = bounds[name]
    return rng.uniform(low, low + 0.9 * (high - low), size).astype(np.float32)


def joined_month(hour_rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    g = grid("N320")
    n = len(hour_rows)
    start = pd.Timestamp("2019-01-01")
    times = np.repeat(pd.date_range(start, periods=HOURS, freq="h").values, n)
    cells = np.tile(hour_rows["cell"].to_numpy(), HOURS)
    count = np.tile(hour_rows["lst_count"].to_numpy(), HOURS)
    size = times.size
    table = pd.DataFrame({
        "time": times.astype("datetime64[ns]"),
        "cell": cells.astype(np.int32),
        "latitude": g.lat[cells],
        "longitude": g.lon[cells],
        "lst": rng.normal(290, 10, size).astype(np.float32),
        "lst_count": count.astype(np.int32),
        "lst_std": rng.uniform(0, 3, size).astype(np.float32),
        "distance_km": rng.uniform(0, 25, size).astype(np.float32),
        **{name: feature_value(name, size, rng) for name in FEATURE_COLUMNS},
    })
    assert list(table.columns) == joined_schema().names
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    lat, lon, lst, utc = modis_hour(1 / 30)
    g = grid("N320")
    hour = np.floor(utc + 0.5).astype(np.int64)

    def join_hour() -> pd.DataFrame:
        cell, distance = nearest(g, lat, lon, "grid")
        close = distance <= 50.0
        return reduce_pixels(hour[close], cell[close], lst[close], distance[close], g.size)

    hour_rows = join_hour()
    join_times = []
    for _ in range(max(args.repeats, 5)):
        t = time.perf_counter()
        join_hour()
        join_times.append(time.perf_counter() - t)
    table = joined_month(hour_rows, rng)
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        validate(lake, "joined_month", "warm-up", table.iloc[:1000], joined_month_parameters(50.0))
        times = []
        for k in range(args.repeats):
            t = time.perf_counter()
            outcome = validate(lake, "joined_month", f"2019-01-run{k}", table, joined_month_parameters(50.0))
            times.append(time.perf_counter() - t)
        assert outcome.success, outcome.summary()
    validation = statistics.median(times)
    join_compute = statistics.median(join_times) * HOURS
    print(f"joined month at full size: N320, {HOURS} hours, {len(table):,} rows x {table.shape[1]} columns, "
          f"{len(load_suite('joined_month')['expectations'])} expectations")
    print(f"  {'step':<52} {'seconds':>9}")
    print(f"  {'join compute (nearest+threshold+group-by) x ' + str(HOURS) + ' h':<52} {join_compute:>9.1f}")
    print(f"  {'GX validation of the month (with Data Docs)':<52} {validation:>9.1f}")
    print(f"  validation / join compute: {validation / join_compute:.2f}  (median of {args.repeats})")


if __name__ == "__main__":
    main()
