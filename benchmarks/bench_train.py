"""Training throughput (samples/s) of the greedy and streaming paths on the CPU, side by side.

A random ML-ready train split of ``--shards`` row groups of 65,536 rows by
``--features`` float32 features is written to a temporary lake. Seed 000's MLP
(4 ReLU layers of n_features/2, Adam, batch ``--batch-size``) then trains one epoch
at a time, ``--repeats`` times per path after a warm-up epoch, fed either from
arrays in memory (greedy) or through ``ml4l.usecases.lst.train.stream_split`` shard by shard
(streaming, shuffle buffer of one shard). Medians are printed with their ratio.

    .venv/bin/python -m benchmarks.bench_train
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from ml4l.config import TrainConfig
from ml4l.usecases.lst.dataset import SHARD_ROWS, TARGET, read_split
from ml4l.lake import Lake
from ml4l.usecases.lst.train import build_model, stream_split
from tests.corpus import write_random_ml_ready


def epoch_seconds(model: object, fit: dict[str, object], repeats: int) -> list[float]:
    """Seconds per epoch of ``model.fit(**fit)``, after one warm-up epoch."""
    model.fit(epochs=1, verbose=0, **fit)  # type: ignore[attr-defined]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(epochs=1, verbose=0, **fit)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--features", type=int, default=58)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
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
        greedy = epoch_seconds(fresh(), {"x": train[features].to_numpy(np.float32), "y": train[TARGET].to_numpy(np.float32),
                                         "batch_size": args.batch_size, "shuffle": True}, args.repeats)
        del train
        streamed = stream_split(lake, "train", "bench", features, args.batch_size, shuffle_rows=SHARD_ROWS, seed=0)
        streaming = epoch_seconds(fresh(), {"x": streamed, "shuffle": False}, args.repeats)

    print(f"training throughput, {rows:,} rows x {args.features} features, batch {args.batch_size}, "
          f"Keras {keras.__version__} on {keras.backend.backend()}, median of {args.repeats} epochs")
    print(f"{'path':<10} {'s/epoch':>9} {'samples/s':>11}")
    for name, times in (("greedy", greedy), ("streaming", streaming)):
        seconds = statistics.median(times)
        print(f"{name:<10} {seconds:>9.2f} {rows / seconds:>11,.0f}   (all: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"streaming / greedy throughput: {statistics.median(greedy) / statistics.median(streaming):.2f}")


if __name__ == "__main__":
    main()
