"""The GPU paths beside the CPU paths, in one run on an NVIDIA GPU: the join, the linear baseline, Keras training.

- **join**: nearest N320 cell of one 1/30-degree MODIS hour, ``ml4l.nearest``'s grid walk
  on the CPU (Numba) and as a CUDA kernel (CuPy); FAISS flat on the GPU beside FAISS on
  the CPU when ``faiss`` has GPU support; the share of pixels given the same cell.
- **baseline**: the linear baseline's least squares, ``ml4l.usecases.lst.train.least_squares`` (NumPy,
  float64 normal equations) against cuML's ``LinearRegression`` when cuML is installed, else
  the same normal equations in CuPy; the largest coefficient difference.
- **Keras**: one epoch of seed 000's MLP on ``--rows`` rows, TensorFlow on the CPU and on the
  GPU, and JAX when it is installed with CUDA (each backend in its own process).

Without a GPU it prints what it cannot run and exits 0; nothing is timed twice on the CPU.

    .venv/bin/python -m benchmarks.bench_gpu
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

_KERAS_EPOCH = """
import json, os, sys, time
import numpy as np
rows, features, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
import keras
from ml4l.config import TrainConfig
from ml4l.usecases.lst.train import build_model
rng = np.random.default_rng(0)
x = rng.normal(size=(rows, features)).astype(np.float32)
y = (x @ rng.normal(size=features) + rng.normal(size=rows)).astype(np.float32)
model = build_model(features, TrainConfig(linear_anchor=False))
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
model.fit(x[:4096], y[:4096], batch_size=1024, epochs=1, verbose=0)
start = time.perf_counter()
model.fit(x, y, batch_size=1024, epochs=1, verbose=0, shuffle=True)
print(json.dumps({"seconds": time.perf_counter() - start, "backend": keras.backend.backend()}))
"""


def gpu_name() -> str | None:
    """The first CUDA device's name, ``None`` without CuPy or a device."""
    if importlib.util.find_spec("cupy") is None:
        return None
    import cupy

    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return None
        return str(cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
    except cupy.cuda.runtime.CUDARuntimeError:
        return None


def seconds(work: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Median seconds of ``work()`` after one warm-up, and its result."""
    result = work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def join(pixels_per_degree: int) -> None:
    import cupy as cp

    from benchmarks.bench_join import modis_hour
    from ml4l.grids import grid
    from ml4l.nearest import _grid_engine_cupy, _nearest_on_rows, _row_index

    g = grid("N320")
    lat, lon, _, _ = modis_hour(1 / pixels_per_degree)

    def cpu() -> np.ndarray:
        cell = np.empty(lat.size, dtype=np.int64)
        _nearest_on_rows(lat, lon, *_row_index(g).arrays(), cell, np.empty(lat.size))
        return cell

    def gpu() -> np.ndarray:
        cell = _grid_engine_cupy(g, lat, lon)[0]
        cp.cuda.Device().synchronize()
        return cell

    cpu_s, cpu_cells = seconds(cpu)
    gpu_s, gpu_cells = seconds(gpu)
    print(f"join, nearest N320 cell of one MODIS hour ({lat.size:,} pixels at 1/{pixels_per_degree} deg)")
    print(f"  {'path':<28} {'s':>8} {'Mpixels/s':>10}")
    print(f"  {'CPU grid walk (Numba)':<28} {cpu_s:>8.3f} {lat.size / cpu_s / 1e6:>10.1f}")
    print(f"  {'GPU grid walk (CuPy kernel)':<28} {gpu_s:>8.3f} {lat.size / gpu_s / 1e6:>10.1f}")
    print(f"  same cell: {np.mean(cpu_cells == gpu_cells):.6%}; GPU / CPU speed: {cpu_s / gpu_s:.1f}x")
    if importlib.util.find_spec("faiss") is not None:
        import faiss

        if hasattr(faiss, "StandardGpuResources"):
            from ml4l.geo import unit_vectors

            points = np.ascontiguousarray(unit_vectors(g.lat, g.lon), dtype=np.float32)
            sample = np.ascontiguousarray(unit_vectors(lat[:200_000], lon[:200_000]), dtype=np.float32)
            flat = faiss.IndexFlatL2(3)
            flat.add(points)
            on_gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, flat)
            faiss_cpu, _ = seconds(lambda: flat.search(sample, 1), 1)
            faiss_gpu, _ = seconds(lambda: on_gpu.search(sample, 1), 1)
            print(f"  FAISS flat, {len(sample):,} pixels: CPU {len(sample) / faiss_cpu / 1e6:.2f}, GPU {len(sample) / faiss_gpu / 1e6:.2f} Mpixels/s")


def baseline(rows: int, features: int) -> None:
    import cupy as cp

    from ml4l.usecases.lst.train import least_squares

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    y = (x @ rng.normal(size=features) + 3.0 + rng.normal(size=rows)).astype(np.float32)
    cpu_s, fit = seconds(lambda: least_squares([(x, y)]))
    if importlib.util.find_spec("cuml") is not None:
        from cuml.linear_model import LinearRegression

        name = "cuML LinearRegression"

        def gpu() -> np.ndarray:
            model = LinearRegression(algorithm="eig").fit(cp.asarray(x, dtype=cp.float64), cp.asarray(y, dtype=cp.float64))
            return np.append(cp.asnumpy(model.coef_), float(model.intercept_))
    else:
        name = "CuPy normal equations"

        def gpu() -> np.ndarray:
            augmented = cp.column_stack([cp.asarray(x, dtype=cp.float64), cp.ones(rows)])
            return cp.asnumpy(cp.linalg.solve(augmented.T @ augmented, augmented.T @ cp.asarray(y, dtype=cp.float64)))

    gpu_s, solution = seconds(gpu)
    difference = np.abs(solution - np.append(fit.coef, fit.intercept)).max()
    print(f"linear baseline, least squares on {rows:,} rows x {features} features (float64)")
    print(f"  CPU NumPy normal equations {cpu_s:.3f} s; GPU {name} {gpu_s:.3f} s; {cpu_s / gpu_s:.1f}x; largest coefficient difference {difference:.2e}")


def keras_epoch(rows: int, features: int) -> None:
    print(f"Keras, one epoch of seed 000's MLP, {rows:,} rows x {features} features, batch 1024")
    runs = [("tensorflow", "CPU", {"CUDA_VISIBLE_DEVICES": ""}), ("tensorflow", "GPU", {})]
    if importlib.util.find_spec("jax") is not None:
        runs += [("jax", "CPU", {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}), ("jax", "GPU", {})]
    for backend, device, env in runs:
        done = subprocess.run([sys.executable, "-c", _KERAS_EPOCH, str(rows), str(features), device],
                              env={**os.environ, "KERAS_BACKEND": backend, **env}, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  {backend} on {device}: failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
            continue
        found = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {backend:<10} {device}: {found['seconds']:.2f} s/epoch, {rows / found['seconds']:,.0f} samples/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=58)
    args = parser.parse_args()
    name = gpu_name()
    if name is None:
        print("no CUDA device (or no CuPy): the GPU paths cannot run here; nothing measured")
        return
    print(f"GPU: {name}")
    join(30)
    baseline(args.rows, args.features)
    keras_epoch(args.rows, args.features)


if __name__ == "__main__":
    main()
