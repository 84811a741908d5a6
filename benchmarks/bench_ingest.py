"""Time the ingest of one full-size ERA day (N320, 24 hours, 15 fields) against ecCodes and cfgrib.

Prints, in one run: xarray + cfgrib opening and loading the files (the reference),
ecCodes decoding message by message, ml4l's header scan, its decoder on one thread
and on all, and its full ingest (scan + decode + Zarr write) on one thread and on
all (into a fresh store: its creation is not timed); then the decoders per packing
(ml4l's own against ecCodes, the measurement that decides which one decodes what).
``--codecs`` prints instead the Zarr codecs' stored size against write and read speed,
the measurement that chose the store's codec. Each figure is the median of ``--repeats``
runs, as CPU seconds (all threads of the process: the cost per core) and wall seconds;
ratios are cfgrib's CPU seconds over the method's. Run it with ``nice`` on a shared
machine; the CPU figures are what compare, and the load average is printed with them.

    nice .venv/bin/python benchmarks/bench_ingest.py            # N320, as in the README
    nice .venv/bin/python benchmarks/bench_ingest.py --codecs   # the codec table
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import eccodes
import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from ml4l.config import Period, Recipe, SampleConfig
from ml4l.era_store import _CHUNK_KEYS, _FIELD_CODEC, _HourChunks, create_timevar_store, ingest_month
from ml4l.lake import Lake
from ml4l.readers.grib import Message, Scan, decode, scan
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


def load(started: float) -> str:
    """The machine's 1-minute load average at the start of the run and now (other jobs slow every figure, cfgrib's too)."""
    return f"load average {started:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"


def repacked(path: str, packing: str, bits: int, count: int) -> str:
    """The first ``count`` messages of ``path`` as GRIB2 with ``packing`` and ``bits`` per value, in a temporary file."""
    out = tempfile.NamedTemporaryFile(suffix=f"-{packing}-{bits}.grib", delete=False)  # noqa: SIM115 (closed below, kept for the caller)
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


CODECS = {
    "none": None,
    "zstd 0 (zarr's default)": [ZstdCodec(level=0)],
    "zstd 1": [ZstdCodec(level=1)],
    **{
        f"blosc {cname} {level} {shuffle}": [BloscCodec(cname=cname, clevel=level, shuffle=shuffle)]
        for cname, levels in (("lz4", (1, 5, 9)), ("zstd", (1, 3)))
        for level in levels
        for shuffle in ("shuffle", "bitshuffle")
    },
}


def codec_table(values: np.ndarray, repeats: int) -> list[tuple[str, float, float, float]]:
    """(codec, write MB/s per core, read MB/s per core, size / raw) of one-hour chunks of ``values``.

    Written as the ingest writes (each field encoded and stored as its hour's chunk), read as the join reads (zarr).
    """
    rows = []
    megabytes = values.nbytes / 1e6
    with tempfile.TemporaryDirectory() as scratch:
        for name, compressors in CODECS.items():
            path = os.path.join(scratch, "codec.zarr")

            def create(path: str = path, compressors: object = compressors) -> None:
                shutil.rmtree(path, ignore_errors=True)
                zarr.create_array(path, shape=values.shape, chunks=(1, values.shape[1]), dtype="float32",
                                  chunk_key_encoding=_CHUNK_KEYS, zarr_format=3, compressors=compressors)  # fmt: skip

            def write(path: str = path) -> None:
                with ThreadPoolExecutor(1) as pool:  # on a worker thread, as the ingest: Blosc then uses one thread
                    chunks = _HourChunks(zarr.open_array(path, mode="r+"))
                    list(pool.map(chunks.put, range(len(values)), values))

            write_cpu, _ = median_seconds(write, repeats, create)
            read_cpu, _ = median_seconds(lambda path=path: zarr.open_array(path)[:], repeats)
            size = sum(f.stat().st_size for f in Path(path).rglob("c.*") if f.is_file())
            rows.append((name, megabytes / write_cpu, megabytes / read_cpu, size / values.nbytes))
    return rows


def codec_sample(scans: list[Scan], hours: int) -> np.ndarray:
    """Every variable of the day at ``hours`` hours spread over it (the variables compress differently)."""
    step = 24 // hours

    def picked(message: Message) -> bool:
        return (message.valid_time - message.valid_time.astype("datetime64[D]")) // np.timedelta64(1, "h") % step == 0

    return np.concatenate([decode(found.path, [m for m in found.messages if picked(m)], 1) for found in scans])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="N320")
    parser.add_argument("--workdir", default="bench-data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codecs", action="store_true", help="print the Zarr codecs' size against speed instead")
    parser.add_argument("--codec-hours", type=int, default=4, help="hours of each variable in the codec table (a divisor of 24)")
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
    started = os.getloadavg()[0]
    if args.codecs:
        sample = codec_sample(scans, args.codec_hours)
        print(f"\nZarr codecs on {len(sample)} one-hour {args.grid} chunks (every variable at {args.codec_hours} hours), CPU per core,")
        print(f"median of {args.repeats}, {load(started)}")
        print(f"{'codec':<28}{'write MB/s':>11}{'read MB/s':>11}{'size':>8}")
        for name, write_rate, read_rate, ratio in codec_table(sample, args.repeats):
            chosen = "   <- the store's" if CODECS[name] == [_FIELD_CODEC] else ""
            print(f"{name:<28}{write_rate:>11.0f}{read_rate:>11.0f}{ratio:>7.2f}x{chosen}")
        return

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
    print(f"\n{args.grid}: {messages} messages, {size_mb:.0f} MB of 16-bit simple-packed GRIB1, {cores} cores, median of {args.repeats},")
    print(load(started))
    print(f"{'method':<34}{'CPU s':>8}{'wall s':>8}{'MB/s/core':>11}{'vs cfgrib':>11}")
    for name, (cpu, wall) in rows:
        print(f"{name:<34}{cpu:>8.2f}{wall:>8.2f}{size_mb / cpu:>11.0f}{cfgrib_cpu / cpu:>10.1f}x")
    for name, (cpu, _) in rows[-2:]:
        print(f"{name.replace('ml4l ', '')} {cfgrib_cpu / cpu:.1f}x cfgrib per core (CPU seconds, same messages, same run)")

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


if __name__ == "__main__":
    main()
