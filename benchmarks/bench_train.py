"""Training throughput (samples/s) of the greedy and streaming paths on the CPU, side by side.

A random ML-ready train split of ``--shards`` row groups of 65,536 rows by
``--features`` float32 features is written to a temporary lake. Two copies of seed
000's MLP (4 ReLU layers of n_features/2, Adam, batch ``--batch-size``), built alike,
train one epoch at a time after a warm-up epoch each: one fed from arrays in memory
(greedy, Keras's own shuffled array feed), one through
``ml4l.usecases.lst.train.stream_split`` block by block (streaming, blocks of one
row group permuted whole, row groups in a new order each pass). The epochs of the two
paths alternate, ``--repeats`` each, so both see the same machine load; the medians of
wall time and process CPU time per epoch are printed with the throughput ratio and the
load average before and after.

    .venv/bin/python -m benchmarks.bench_train
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np

from ml4l.config import TrainConfig
from ml4l.lake import Lake
from ml4l.usecases.lst.dataset import SHARD_ROWS, TARGET, read_split
from ml4l.usecases.lst.train import build_model, stream_split
from tests.corpus import write_random_ml_ready


def timed(epoch: Callable[[], object]) -> tuple[float, float]:
    """Wall and process CPU seconds of one ``epoch()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    epoch()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--features", type=int, default=58)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import keras

    with tempfile.TemporaryDirectory() as scratch:
        lake = Lake(scratch)
        write_random_ml_ready(lake, "bench", args.shards, args.features)
        features = [f"f{i}" for i in range(args.features)]
        rows = args.shards * SHARD_ROWS
        config = TrainConfig(linear_anchor=False, batch_size=args.batch_size)

        def fresh() -> object:
            model = build_model(args.features, config)
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
            return model

        train = read_split(lake, "train", "bench")
        x, y = train[features].to_numpy(np.float32), train[TARGET].to_numpy(np.float32)
        del train
        streamed = stream_split(lake, "train", "bench", features, args.batch_size, shuffle_rows=SHARD_ROWS, seed=0)
        greedy_model, streaming_model = fresh(), fresh()
        epochs: dict[str, Callable[[], object]] = {
            "greedy": lambda: greedy_model.fit(x, y, batch_size=args.batch_size, shuffle=True, epochs=1, verbose=0),  # type: ignore[attr-defined]
            "streaming": lambda: streaming_model.fit(streamed, shuffle=False, epochs=1, verbose=0),  # type: ignore[attr-defined]
        }
        load_before = os.getloadavg()[0]
        for epoch in epochs.values():
            epoch()  # warm-up: tracing, thread pools, page cache
        times: dict[str, list[tuple[float, float]]] = {path: [] for path in epochs}
        for _ in range(args.repeats):
            for path, epoch in epochs.items():
                times[path].append(timed(epoch))
        load_after = os.getloadavg()[0]

    print(f"training throughput, {rows:,} rows x {args.features} features, batch {args.batch_size}, "
          f"Keras {keras.__version__} on {keras.backend.backend()}, median of {args.repeats} interleaved epochs, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"{'path':<10} {'s/epoch':>9} {'CPU s/epoch':>12} {'samples/s':>11}")
    medians = {}
    for path, measured in times.items():
        medians[path] = statistics.median(wall for wall, _ in measured)
        cpu = statistics.median(cpu for _, cpu in measured)
        print(f"{path:<10} {medians[path]:>9.2f} {cpu:>12.2f} {rows / medians[path]:>11,.0f}   "
              f"(all: {', '.join(f'{wall:.2f}' for wall, _ in measured)})")
    print(f"streaming / greedy throughput: {medians['greedy'] / medians['streaming']:.2f}")


if __name__ == "__main__":
    main()
