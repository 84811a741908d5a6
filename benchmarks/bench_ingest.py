"""Time the ingest of one full-size ERA day (N320, 24 hours, 15 fields) against ecCodes and cfgrib.

Prints, in one run: xarray + cfgrib opening and loading the files (the reference),
ecCodes decoding message by message, ml4l's header scan, its decoder on one thread
and on all, and its full ingest (scan + decode + Zarr write) on one thread and on
all (into a fresh store: its creation is not timed); then the decoders per packing (ml4l's own against ecCodes, the measurement
that decides which one decodes what), and the Zarr codecs (size against speed).
Each figure is the median of ``--repeats`` runs, as CPU seconds (all threads of the
process: the cost per core) and wall seconds; ratios are cfgrib's CPU seconds over
the method's. Run it with ``nice`` on a shared machine; the CPU figures are what compare.

    nice .venv/bin/python benchmarks/bench_ingest.py            # N320, as in the README
    nice .venv/bin/python benchmarks/bench_ingest.py --grid O96 # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import eccodes
import numpy as np

from ml4l.config import Period, Recipe, SampleConfig
from ml4l.era_store import create_timevar_store, ingest_month
from ml4l.lake import Lake
from ml4l.readers.grib import decode, scan
from ml4l.usecases.lst.sample import SampleWriter

MONTH = "2019-01"


def median_seconds(run: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None) -> tuple[float, float]:
    """Median CPU seconds (every thread of the process) and median wall seconds of ``repeats`` runs,
    each after an untimed ``setup``."""
    cpu, wall = [], []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        run()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(cpu), statistics.median(wall)


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


def repacked(path: str, packing: str, bits: int, count: int) -> str:
    """The first ``count`` messages of ``path`` as GRIB2 with ``packing`` and ``bits`` per value, in a temporary file."""
    out = tempfile.NamedTemporaryFile(suffix=f"-{packing}-{bits}.grib", delete=False)
    with open(path, "rb") as stream, out:
        for _ in range(count):
            handle = eccodes.codes_grib_new_from_file(stream)
            try:
                values = eccodes.codes_get_values(handle)
                eccodes.codes_set(handle, "edition", 2)
                eccodes.codes_set(handle, "packingType", packing)
                eccodes.codes_set(handle, "bitsPerValue", bits)
                eccodes.codes_set_values(handle, values)
                out.write(eccodes.codes_get_message(handle))
            finally:
                eccodes.codes_release(handle)
    return out.name


def codec_table(values: np.ndarray, repeats: int) -> list[tuple[str, float, float, float]]:
    """(codec, write MB/s per core, read MB/s per core, size / raw) for one-hour chunks of ``values``."""
    import zarr
    from zarr.codecs import BloscCodec, ZstdCodec

    options = {
        "none": None,
        "zstd level 0 (zarr's default)": [ZstdCodec(level=0)],
        "zstd level 1": [ZstdCodec(level=1)],
        "blosc lz4 1 shuffle": [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")],
        "blosc lz4 5 shuffle": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
        "blosc lz4 1 bitshuffle": [BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle")],
        "blosc zstd 1 bitshuffle": [BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")],
    }
    rows = []
    megabytes = values.nbytes / 1e6
    with tempfile.TemporaryDirectory() as scratch:
        for name, compressors in options.items():
            path = os.path.join(scratch, "codec.zarr")

            def write(path: str = path, compressors: object = compressors) -> None:
                shutil.rmtree(path, ignore_errors=True)
                array = zarr.create_array(path, shape=values.shape, chunks=(1, values.shape[1]), dtype="float32", zarr_format=3, compressors=compressors)
                array[:] = values

            write_cpu, _ = median_seconds(write, repeats)
            read_cpu, _ = median_seconds(lambda path=path: zarr.open_array(path)[:], repeats)
            size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
            rows.append((name, megabytes / write_cpu, megabytes / read_cpu, size / values.nbytes))
    return rows


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

    def fresh_store() -> None:  # untimed: removing the last run's store is no part of an ingest
        shutil.rmtree(lake.path("era"), ignore_errors=True)
        create_timevar_store(lake, recipe.grid, recipe.period)

    def ml4l_ingest(workers: int) -> Callable[[], None]:
        return lambda: ingest_month(lake, MONTH, workers=workers)

    # the same values as ecCodes, bit for bit, before timing anything
    with open(paths[0], "rb") as stream:
        handle = eccodes.codes_grib_new_from_file(stream)
        reference = eccodes.codes_get_values(handle).astype(np.float32)
        eccodes.codes_release(handle)
    assert np.array_equal(decode(paths[0], scans[0].messages[:1])[0], reference)

    rows = [
        ("xarray + cfgrib open + load", median_seconds(lambda: cfgrib_load(paths), args.repeats)),
        ("ecCodes, message by message", median_seconds(lambda: eccodes_sequential(paths), args.repeats)),
        ("ml4l scan (headers only)", median_seconds(lambda: [scan(p) for p in paths], args.repeats)),
        ("ml4l decode, 1 thread", median_seconds(ml4l_decode(1), args.repeats)),
        (f"ml4l decode, {cores} threads", median_seconds(ml4l_decode(cores), args.repeats)),
        ("ml4l ingest, 1 thread", median_seconds(ml4l_ingest(1), args.repeats, fresh_store)),
        (f"ml4l ingest, {cores} threads", median_seconds(ml4l_ingest(cores), args.repeats, fresh_store)),
    ]
    cfgrib_cpu = rows[0][1][0]
    print(f"\n{args.grid}: {messages} messages, {size_mb:.0f} MB of 16-bit simple-packed GRIB1, {cores} cores, median of {args.repeats}")
    print(f"{'method':<34}{'CPU s':>8}{'wall s':>8}{'MB/s/core':>11}{'vs cfgrib':>11}")
    for name, (cpu, wall) in rows:
        print(f"{name:<34}{cpu:>8.2f}{wall:>8.2f}{size_mb / cpu:>11.0f}{cfgrib_cpu / cpu:>10.1f}x")
    for name, (cpu, _) in rows[-2:]:
        print(f"{name.replace('ml4l ', '')} {cfgrib_cpu / cpu:.1f}x cfgrib per core")

    print("\ndecoders per packing, 24 messages, CPU ms per message (ml4l decodes a packing itself only where it is faster)")
    print(f"{'packing':<26}{'ml4l':>8}{'ecCodes':>9}")
    for packing, bits in (("grid_simple", 8), ("grid_simple", 16), ("grid_simple", 24), ("grid_simple", 12), ("grid_ccsds", 16)):
        path = repacked(paths[0], packing, bits, 24)
        try:
            found = scan(path)
            own, _ = median_seconds(lambda found=found: decode(found.path, found.messages, 1), args.repeats)
            theirs, _ = median_seconds(lambda path=path: eccodes_sequential([path]), args.repeats)
            who = "own" if found.messages[0].fast else "ecCodes"
            print(f"{packing + f' {bits} bits':<26}{own / 24 * 1e3:>8.2f}{theirs / 24 * 1e3:>9.2f}   ml4l uses {who}")
        finally:
            os.unlink(path)

    print("\nZarr codecs on 48 one-hour chunks of decoded fields (per core)")
    print(f"{'codec':<30}{'write MB/s':>11}{'read MB/s':>11}{'size':>8}")
    for name, write_rate, read_rate, ratio in codec_table(decode(paths[0], scans[0].messages[:48], 1), args.repeats):
        print(f"{name:<30}{write_rate:>11.0f}{read_rate:>11.0f}{ratio:>7.2f}x")


if __name__ == "__main__":
    main()
