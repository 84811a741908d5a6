"""Gap-filling models, all fitted on training rows only.

* ``linear_t2m``: LST = a + b T2m by least squares: the seed's one-node linear model, fitted properly.
* ``per_pixel_linear``: one such fit per pixel on its training steps; a pixel with fewer than
  :data:`MIN_PIXEL_ROWS` training rows or no spread in T2m falls back to ``linear_t2m``.
* ``mlp``: an MLP on the standardised :data:`~ml4l.usecases.gapfill.dataset.FEATURES` predicting the
  standardised residual ``LST - 273.15 - T2m``, trained by :func:`ml4l.ml.trainer.fit` (validation picks the epoch).

Each model predicts LST (K) from raw features with :meth:`predict`, and saves to / loads from a lake folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ml4l.lake import Lake
from ml4l.ml.stats import RunningStats, standardise
from ml4l.ml.trainer import FitConfig, fit, import_keras, mlp
from ml4l.usecases.gapfill.dataset import FEATURES, Samples, fit_statistics
from ml4l.usecases.gapfill.recipe import ModelSpec

MIN_PIXEL_ROWS = 4
Float32 = npt.NDArray[np.float32]


class GapFiller(Protocol):
    def predict(self, x: Float32, row: npt.NDArray[np.int64], col: npt.NDArray[np.int64]) -> Float32: ...


@dataclass(frozen=True)
class LinearT2m:
    intercept: float
    slope: float

    @classmethod
    def fit(cls, train: Samples) -> LinearT2m:
        design = np.column_stack([np.ones(train.y.size), train.t2m.astype(np.float64)])
        (intercept, slope), *_ = np.linalg.lstsq(design, train.y.astype(np.float64), rcond=None)
        return cls(float(intercept), float(slope))

    def predict(self, x: Float32, row: npt.NDArray[np.int64], col: npt.NDArray[np.int64]) -> Float32:
        return (self.intercept + self.slope * x[:, 0].astype(np.float64)).astype(np.float32)


@dataclass(frozen=True)
class PerPixelLinear:
    intercept: npt.NDArray[np.float64]
    """``(lat, lon)``; the pixels of the fallback hold its coefficients."""
    slope: npt.NDArray[np.float64]

    @classmethod
    def fit(cls, train: Samples, grid: tuple[int, int], fallback: LinearT2m) -> PerPixelLinear:
        pixel = train.row * grid[1] + train.col
        size = grid[0] * grid[1]
        t, y = train.t2m.astype(np.float64), train.y.astype(np.float64)
        n = np.bincount(pixel, minlength=size).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_t = np.bincount(pixel, t, size) / n
            mean_y = np.bincount(pixel, y, size) / n
            dt = t - mean_t[pixel]
            var_t = np.bincount(pixel, dt * dt, size)
            cov = np.bincount(pixel, dt * (y - mean_y[pixel]), size)
            slope = cov / var_t
        own = (n >= MIN_PIXEL_ROWS) & (var_t > 1e-6 * np.maximum(n, 1))
        slope = np.where(own, slope, fallback.slope)
        intercept = np.where(own, mean_y - slope * mean_t, fallback.intercept)
        return cls(intercept.reshape(grid), slope.reshape(grid))

    def predict(self, x: Float32, row: npt.NDArray[np.int64], col: npt.NDArray[np.int64]) -> Float32:
        return (self.intercept[row, col] + self.slope[row, col] * x[:, 0]).astype(np.float32)


class MlpFiller:
    """The Keras MLP with the training rows' statistics; predicts LST (K) from raw features."""

    def __init__(self, network: Any, features: RunningStats, residual: RunningStats, best_epoch: int = 0) -> None:
        self.network = network
        self.features = features
        self.residual = residual
        self.best_epoch = best_epoch
        self._weights = [(w.astype(np.float32), b.astype(np.float32)) for w, b in _dense_layers(network)]

    @classmethod
    def fit(cls, train: Samples, validation: Samples, spec: ModelSpec) -> MlpFiller:
        features, residual = fit_statistics(train)

        def xy(rows: Samples) -> tuple[Float32, Float32]:
            target = standardise(rows.y.astype(np.float64) - 273.15 - rows.t2m, residual)
            return standardise(rows.x, features), target[:, None]

        config = FitConfig(
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            patience=spec.patience,
            seed=spec.seed,
        )
        result = fit(lambda: mlp(len(FEATURES), spec.hidden), xy(train), xy(validation), config)
        return cls(result.model, features, residual, result.best_epoch)

    def predict(self, x: Float32, row: npt.NDArray[np.int64], col: npt.NDArray[np.int64]) -> Float32:
        """A float32 NumPy forward pass of the trained weights (Keras' per-call overhead dominates small chunks)."""
        h = standardise(x, self.features)
        for k, (w, b) in enumerate(self._weights):
            h = h @ w + b
            if k < len(self._weights) - 1:
                np.maximum(h, 0, out=h)
        residual = h[:, 0] * np.float32(self.residual.std[0]) + np.float32(self.residual.mean[0])
        return (x[:, 0] + np.float32(273.15) + residual).astype(np.float32)

    def save(self, lake: Lake, directory: str) -> str:
        """``network.keras`` and ``statistics.json`` under ``directory``; returns the network's path."""
        import tempfile

        lake.fs.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            local = f"{tmp}/network.keras"
            self.network.save(local)
            lake.fs.put_file(local, f"{directory}/network.keras")
        stats = {
            "features": self.features.to_dict(list(FEATURES)),
            "residual": self.residual.to_dict(["residual"]),
            "best_epoch": self.best_epoch,
        }
        with lake.fs.open(f"{directory}/statistics.json", "w") as out:
            json.dump(stats, out, indent=2)
        return f"{directory}/network.keras"

    @classmethod
    def load(cls, lake: Lake, directory: str) -> MlpFiller:
        import tempfile

        keras = import_keras()
        with lake.fs.open(f"{directory}/statistics.json") as source:
            stats = json.load(source)
        with tempfile.TemporaryDirectory() as tmp:
            local = f"{tmp}/network.keras"
            lake.fs.get_file(f"{directory}/network.keras", local)
            network = keras.models.load_model(local, compile=False)
        return cls(
            network,
            RunningStats.from_dict(stats["features"]),
            RunningStats.from_dict(stats["residual"]),
            stats["best_epoch"],
        )


def _dense_layers(network: Any) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
    """(kernel, bias) of each Dense layer of a plain MLP, in order."""
    return [(np.asarray(layer.kernel), np.asarray(layer.bias)) for layer in network.layers if hasattr(layer, "kernel")]
