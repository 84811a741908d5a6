"""Baselines of the assimilation, each fitted on the training years only.

- ``climatology``: an anomaly of 0 everywhere.
- ``pca``: the leading EOFs of the training fields, their coefficients fitted to the observations
  with the same prior form as the VAE (coefficient ``i`` ~ N(0, lambda_i), the variance the EOFs
  leave out added to the observation error).
- ``oi``: optimal interpolation (simple kriging) with a Gaussian covariance
  ``v exp(-d^2 / (2 l^2))`` whose variance and length are fitted on the training fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import curve_fit

from ml4l.usecases.assimilation.fields import Grid, great_circle_km

FloatArray = npt.NDArray[np.float64]


def _at_points(flat_fields: FloatArray, index: npt.NDArray[np.int64], weights: FloatArray) -> FloatArray:
    """``H`` on fields ``(n, cells)``: ``(n, points)``."""
    return np.sum(flat_fields[:, index] * weights, axis=-1)


@dataclass(frozen=True)
class PCAPrior:
    eofs: FloatArray  # (k, cells), orthonormal
    variances: FloatArray  # (k,)
    residual_variance: float  # per cell, left out by the k EOFs

    @classmethod
    def fit(cls, training: FloatArray, k: int) -> PCAPrior:
        flat = training.reshape(len(training), -1).astype(np.float64)
        _, singular, vt = np.linalg.svd(flat, full_matrices=False)
        variances = singular**2 / len(flat)
        return cls(vt[:k], variances[:k], float(variances[k:].sum() / flat.shape[1]))

    def analyse(self, index: npt.NDArray[np.int64], weights: FloatArray, observations: FloatArray, sigma_o: float) -> FloatArray:
        """MAP fields ``(days, cells)`` for observations ``(days, points)``."""
        basis = _at_points(self.eofs, index, weights)  # (k, points)
        noise = sigma_o**2 + self.residual_variance
        precision = np.diag(1.0 / self.variances) + basis @ basis.T / noise
        coefficients = np.linalg.solve(precision, basis @ observations.T / noise)
        return (self.eofs.T @ coefficients).T


@dataclass(frozen=True)
class GaussianCovariance:
    variance: float
    length_km: float

    def __call__(self, distance_km: FloatArray) -> FloatArray:
        return self.variance * np.exp(-0.5 * (distance_km / self.length_km) ** 2)

    @classmethod
    def fit(cls, training: FloatArray, grid: Grid, pairs: int = 20000, seed: int = 0) -> GaussianCovariance:
        """Least-squares fit to the training fields' empirical covariance in 40 distance bins."""
        flat = training.reshape(len(training), -1).astype(np.float64)
        lat, lon = (a.ravel() for a in np.meshgrid(grid.lat, grid.lon, indexing="ij"))
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, flat.shape[1], pairs), rng.integers(0, flat.shape[1], pairs)
        distance = great_circle_km(lat[i], lon[i], lat[j], lon[j])
        covariance = (flat.T @ flat / len(flat))[i, j]  # one product of all cells, then the pairs: ~40x faster than per pair
        edges = np.quantile(distance, np.linspace(0, 1, 41))
        which = np.clip(np.searchsorted(edges, distance, side="right") - 1, 0, 39)
        centres = np.array([distance[which == b].mean() for b in range(40)])
        values = np.array([covariance[which == b].mean() for b in range(40)])
        (variance, length), _ = curve_fit(
            lambda d, v, ell: v * np.exp(-0.5 * (d / ell) ** 2),
            centres,
            values,
            p0=(float(flat.var()), float(np.median(distance))),
            maxfev=10000,
        )
        return cls(float(variance), float(abs(length)))


def optimal_interpolation(
    covariance: GaussianCovariance, grid: Grid, station_lat: FloatArray, station_lon: FloatArray, observations: FloatArray, sigma_o: float
) -> FloatArray:
    """Simple-kriging fields ``(days, cells)`` from observations ``(days, points)`` at the stations."""
    lat, lon = (a.ravel() for a in np.meshgrid(grid.lat, grid.lon, indexing="ij"))
    between = covariance(great_circle_km(station_lat[:, None], station_lon[:, None], station_lat[None, :], station_lon[None, :]))
    to_grid = covariance(great_circle_km(lat[:, None], lon[:, None], station_lat[None, :], station_lon[None, :]))
    gain = np.linalg.solve(between + sigma_o**2 * np.eye(len(station_lat)), to_grid.T)  # (points, cells)
    return observations @ gain
