"""Time the ingest of one full-size ERA day (N320, 24 hours, 15 fields) against ecCodes and cfgrib.

Prints, side by side in one run: ml4l's decoder and full ingest (decode + Zarr write),
ecCodes decoding message by message, and xarray + cfgrib opening and loading the same files.
Medians of ``--repeats`` runs; ratios are against cfgrib.

    .venv/bin/python benchmarks/bench_ingest.py            # N320, as in the README
    .venv/bin/python benchmarks/bench_ingest.py --grid O96 # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import eccodes
import numpy as np

from ml4l.config import Period, Recipe, SampleConfig
from ml4l.era_store import create_timevar_store, ingest_month
from ml4l.grib import decode, scan
from ml4l.lake import Lake
from ml4l.sample import SampleWriter

MONTH = "2019-01"


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def eccodes_sequential(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as stream:
            while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
                eccodes.codes_get_values(handle)
                eccodes.codes_release(handle)


def cfgrib_load(paths: list[str]) -> None:
    import cfgrib

    warnings.filterwarnings("ignore", category=FutureWarning)  # cfgrib's xr.merge default, not ours
    for path in paths:
        for ds in cfgrib.open_datasets(path, indexpath=""):
            ds.load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="N320")
    parser.add_argument("--workdir", default="bench-data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    recipe = Recipe(f"bench-{args.grid}", args.grid, Period(MONTH, MONTH, days=1), SampleConfig(seed=1))
    lake = Lake.at(os.path.join(args.workdir, args.grid))
    paths = [lake.era_sfc(MONTH), lake.era_skin(MONTH)]
    if not all(Path(p).exists() for p in paths):
        start = time.perf_counter()
        SampleWriter(recipe, lake).era_month(MONTH)
        print(f"wrote sample day in {time.perf_counter() - start:.0f} s")
    scans = [scan(p) for p in paths]
    messages = sum(len(s.messages) for s in scans)
    size_mb = sum(os.path.getsize(p) for p in paths) / 1e6
    cores = os.cpu_count() or 1

    def ml4l_decode(workers: int) -> Callable[[], None]:
        return lambda: [decode(s.path, s.messages, workers) for s in scans]

    def ml4l_ingest() -> None:
        shutil.rmtree(lake.path("era"), ignore_errors=True)
        create_timevar_store(lake, recipe.grid, recipe.period)
        ingest_month(lake, MONTH)

    # same values as ecCodes, bit for bit, before timing anything
    first = scans[0].messages[:1]
    with open(paths[0], "rb") as stream:
        handle = eccodes.codes_grib_new_from_file(stream)
        reference = eccodes.codes_get_values(handle).astype(np.float32)
        eccodes.codes_release(handle)
    assert np.array_equal(decode(paths[0], first)[0], reference)

    rows = [
        ("xarray + cfgrib open + load", median_seconds(lambda: cfgrib_load(paths), args.repeats)),
        ("ecCodes, message by message", median_seconds(lambda: eccodes_sequential(paths), args.repeats)),
        ("ml4l decode, 1 thread", median_seconds(ml4l_decode(1), args.repeats)),
        (f"ml4l decode, {cores} threads", median_seconds(ml4l_decode(cores), args.repeats)),
        ("ml4l ingest (scan+decode+Zarr)", median_seconds(ml4l_ingest, args.repeats)),
    ]
    reference_seconds = rows[0][1]
    print(f"\n{args.grid}: {messages} messages, {size_mb:.0f} MB of 16-bit simple-packed GRIB1, {cores} cores, median of {args.repeats}")
    print(f"{'method':<34}{'seconds':>9}{'MB/s':>9}{'vs cfgrib':>11}")
    for name, seconds in rows:
        print(f"{name:<34}{seconds:>9.2f}{size_mb / seconds:>9.0f}{reference_seconds / seconds:>10.1f}x")


if __name__ == "__main__":
    main()
