"""Time the nearest-point search and a whole hour's join at full size: 1/30-degree MODIS on N320 and O1280.

One MODIS hour is built from the synthetic Earth: the pixels of a 1/30-degree grid that
Aqua sees in one UTC hour over land with |lat| < 70, less ~40% cloud (about 0.5M pixels,
as in the real product). Printed side by side in one run, for each grid:

* pixels/s of each engine, its ratio to the BallTree reference and to FAISS flat on
  (lat, lon) in degrees (the seed's way), and its agreement with the exact nearest
  (a pixel agrees when its point is no farther than the true nearest);
* the whole hour: hour assignment, nearest, threshold and the (hour, cell) group-by,
  and the group-by alone against pandas.

Slow engines run on a random subsample of the hour (their rate does not depend on it).
Medians of ``--repeats`` runs.

    .venv/bin/python benchmarks/bench_join.py             # as in the README
    .venv/bin/python benchmarks/bench_join.py --grids N320 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numba
import numpy as np
import pandas as pd

from ml4l.geo import haversine_km
from ml4l.grids import Grid, grid
from ml4l.join import reduce_pixels
from ml4l.nearest import nearest
from ml4l.usecases.lst.sample import ModisGrid, hours_since_epoch
from ml4l.synthetic import SyntheticEarth

DAY = pd.Timestamp("2019-01-15")
HOUR = 12
SAMPLE = {"balltree": 50_000, "faiss": 2_000, "faiss-degrees": 2_000}
TIE_KM = 1e-6
T = TypeVar("T")


def median_seconds(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall time of ``repeats`` calls, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def modis_hour(resolution: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitude, longitude, LST and UTC hour (from DAY 00:00) of the pixels seen in one UTC hour."""
    earth = SyntheticEarth(20190101)
    modis = ModisGrid(resolution)
    day_start = float(hours_since_epoch(DAY)[0])
    lat_rows, lon_cols = modis.lat, modis.lon
    out: list[tuple[np.ndarray, ...]] = []
    rng = np.random.default_rng(0)
    for first in range(0, lat_rows.size, 256):
        block = lat_rows[first : first + 256]
        block = block[np.abs(block) < 70]
        if block.size == 0:
            continue
        lat, lon = (a.ravel() for a in np.meshgrid(block, lon_cols, indexing="ij"))
        utc, _ = earth.overpass(lat, lon, day_start)
        hour = np.floor(utc - day_start + 0.5)
        seen = hour == HOUR
        lat, lon, utc = lat[seen], lon[seen], utc[seen] - day_start
        land = earth.land_sea_mask(lat, lon) > 0.5
        clear = rng.random(lat.size) > 0.4
        keep = land & clear
        out.append((lat[keep], lon[keep], rng.normal(290, 8, keep.sum()), utc[keep]))
    return tuple(np.concatenate(parts) for parts in zip(*out))  # type: ignore[return-value]


def faiss_degrees(g: Grid, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The seed's join: FAISS flat L2 on (lat, lon) in degrees, longitudes in -180..180."""
    import faiss

    index = faiss.IndexFlatL2(2)
    index.add(np.column_stack([g.lat, (g.lon + 180) % 360 - 180]).astype(np.float32))
    _, found = index.search(np.column_stack([lat, lon]).astype(np.float32), 1)
    return found[:, 0]


def bench_grid(name: str, lat: np.ndarray, lon: np.ndarray, lst: np.ndarray, utc: np.ndarray, repeats: int) -> None:
    g = grid(name)
    threads = numba.config.NUMBA_NUM_THREADS
    rng = np.random.default_rng(1)
    nearest(g, lat[:10], lon[:10], "grid")  # compile
    _, exact = nearest(g, lat, lon, "grid")
    rows = []

    def rate(label: str, n: int, seconds: float, cells: np.ndarray, sub: np.ndarray) -> None:
        farther = haversine_km(lat[sub], lon[sub], g.lat[cells], g.lon[cells]) - exact[sub]
        rows.append((label, n / seconds, float((farther <= TIE_KM).mean())))

    everything = np.arange(lat.size)
    for count in (1, threads):
        numba.set_num_threads(count)
        seconds, (cells, _) = median_seconds(lambda: nearest(g, lat, lon, "grid"), repeats)
        rate(f"grid, numba, {count} thread{'s' if count > 1 else ''}", lat.size, seconds, cells, everything)
    for label, engine in (("faiss flat, 3-D, re-ranked", "faiss"), ("balltree (reference)", "balltree")):
        sub = rng.choice(lat.size, SAMPLE["faiss" if engine == "faiss" else "balltree"], replace=False)
        nearest(g, lat[sub[:10]], lon[sub[:10]], engine)  # type: ignore[arg-type]  # builds the index
        seconds, (cells, _) = median_seconds(lambda: nearest(g, lat[sub], lon[sub], engine), 1)  # type: ignore[arg-type]
        rate(label, sub.size, seconds, cells, sub)
    sub = rng.choice(lat.size, SAMPLE["faiss-degrees"], replace=False)
    seconds, cells = median_seconds(lambda: faiss_degrees(g, lat[sub], lon[sub]), 1)
    rate("faiss flat, (lat, lon) degrees: seed", sub.size, seconds, cells, sub)

    reference = {label: r for label, r, _ in rows}
    print(f"\n{name} ({g.size:,} points), {lat.size:,} pixels in one MODIS hour, {os.cpu_count()} cores")
    print(f"  {'engine':<38} {'pixels/s':>12} {'x balltree':>11} {'x seed':>9} {'exact':>8}")
    for label, r, agree in rows:
        print(
            f"  {label:<38} {r:>12,.0f} {r / reference['balltree (reference)']:>11.1f} "
            f"{r / reference['faiss flat, (lat, lon) degrees: seed']:>9.1f} {agree:>8.2%}"
        )

    numba.set_num_threads(threads)
    hour_index = np.floor(utc + 0.5).astype(np.int64)

    def whole_hour() -> pd.DataFrame:
        cell, distance = nearest(g, lat, lon, "grid")
        close = distance <= 50.0
        return reduce_pixels(hour_index[close], cell[close], lst[close], distance[close], g.size)

    reduce_pixels(hour_index[:10], np.zeros(10, dtype=np.int64), lst[:10], lst[:10], g.size)  # compile
    cell, distance = nearest(g, lat, lon, "grid")
    hour_seconds, _ = median_seconds(whole_hour, repeats)
    ours, _ = median_seconds(lambda: reduce_pixels(hour_index, cell, lst, distance, g.size), repeats)
    frame = pd.DataFrame({"hour": hour_index, "cell": cell, "lst": lst, "distance": distance})
    theirs, _ = median_seconds(
        lambda: frame.groupby(["hour", "cell"]).agg(n=("lst", "size"), mean=("lst", "mean"), std=("lst", "std"), d=("distance", "mean")),
        repeats,
    )
    print(f"  whole hour (assign, nearest, threshold, group-by), {threads} threads: {hour_seconds:.3f} s "
          f"(seed on a GPU: 0.42-1.27 s)")
    print(f"  group-by alone: ml4l {lat.size / ours / 1e6:.1f} M rows/s, pandas {lat.size / theirs / 1e6:.1f} M rows/s "
          f"({theirs / ours:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", nargs="+", default=["N320", "O1280"])
    parser.add_argument("--resolution", type=float, default=1 / 30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    lat, lon, lst, utc = modis_hour(args.resolution)
    print(f"MODIS hour at {args.resolution:.4f} degrees: {lat.size:,} pixels (built in {time.perf_counter() - start:.0f} s)")
    for name in args.grids:
        bench_grid(name, lat, lon, lst, utc, args.repeats)


if __name__ == "__main__":
    main()
