"""The GPU paths give the CPU paths' answers (skipped without CuPy and a CUDA device: CI has none)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import requires_gpu
from ml4l.grids import grid

pytestmark = requires_gpu


def test_grid_walk_on_the_gpu_finds_the_cpus_cells() -> None:
    from ml4l.nearest import _grid_engine_cupy, _nearest_on_rows, _row_index

    g = grid("N320")
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-89.9, 89.9, 200_000), rng.uniform(-180.0, 540.0, 200_000)
    cell = np.empty(lat.size, dtype=np.int64)
    distance = np.empty(lat.size)
    _nearest_on_rows(lat, lon, *_row_index(g).arrays(), cell, distance)
    gpu_cell, gpu_distance = _grid_engine_cupy(g, lat, lon)
    # the same float64 arithmetic, but CUDA's sin/asin against Numba's: distances agree to rounding
    # (a few ulps of the Earth's radius), and cells everywhere but at exact ties (none with random points)
    np.testing.assert_array_equal(gpu_cell, cell)
    np.testing.assert_allclose(gpu_distance, distance, rtol=0, atol=1e3 * np.finfo(np.float64).eps * 6371.0)


def test_least_squares_on_the_gpu_solves_the_cpus_problem() -> None:
    import cupy as cp

    from ml4l.usecases.lst.train import least_squares

    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 9)).astype(np.float32)
    y = x @ rng.normal(size=9) + 3.0 + rng.normal(size=20_000)
    fit = least_squares([(x, y)])
    augmented = np.column_stack([x.astype(np.float64), np.ones(len(x))])
    on_gpu = cp.asarray(augmented)
    solution = cp.asnumpy(cp.linalg.solve(on_gpu.T @ on_gpu, on_gpu.T @ cp.asarray(y)))
    expected = np.append(fit.coef, fit.intercept)
    bound = 10 * np.linalg.cond(augmented) ** 2 * np.finfo(np.float64).eps * augmented.shape[1]  # normal equations
    assert np.linalg.norm(solution - expected) <= bound * np.linalg.norm(expected)


def test_keras_mlp_predicts_the_same_on_gpu_and_cpu() -> None:
    tf = pytest.importorskip("tensorflow")
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees no GPU")
    from ml4l.config import TrainConfig
    from ml4l.usecases.lst.train import build_model

    tf.config.experimental.enable_tensor_float_32_execution(False)  # TF32 would round the GPU's products to 10 bits
    model = build_model(20, TrainConfig(linear_anchor=False))
    x = np.random.default_rng(2).normal(size=(4096, 20)).astype(np.float32)
    with tf.device("/CPU:0"):
        cpu = model(x).numpy()
    with tf.device("/GPU:0"):
        gpu = model(x).numpy()
    # float32 sums of 20 then 10 terms per layer, 5 layers, in another order: rounding of that size
    scale = np.abs(cpu).max() + 1.0
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=5 * 20 * np.finfo(np.float32).eps * scale)
