"""Scores of an analysis against the truth, at points without observations."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import chisquare

FloatArray = npt.NDArray[np.float64]


def rmse(truth: FloatArray, estimate: FloatArray) -> float:
    return float(np.sqrt(np.mean((estimate - truth) ** 2)))


def spread_skill_ratio(members: FloatArray, truth: FloatArray) -> float:
    """``sqrt((K+1)/K * mean ensemble variance) / RMSE of the ensemble mean``; 1 for a calibrated ensemble.

    ``members`` ``(n, K)`` and ``truth`` ``(n,)``: for a calibrated ensemble the mean's squared error
    equals ``(K+1)/K`` times the expected ensemble variance (Fortin et al. 2014).
    """
    k = members.shape[1]
    variance = members.var(axis=1, ddof=1).mean()
    return float(np.sqrt((k + 1) / k * variance) / rmse(truth, members.mean(axis=1)))


def ranks(members: FloatArray, truth: FloatArray) -> npt.NDArray[np.int64]:
    """The truth's rank among the members (0..K): ``members`` ``(..., K)``, ``truth`` ``(...)``."""
    return np.sum(members < truth[..., None], axis=-1)


def rank_histogram(members: FloatArray, truth: FloatArray) -> tuple[npt.NDArray[np.int64], float]:
    """Counts of the truth's rank among ``K`` members (``K + 1`` bins) and the chi-square p-value of flatness.

    The test assumes independent samples: take them far enough apart (:func:`lattice_samples`,
    :func:`neighbour_correlation`), or the p-value is far too small.
    """
    counts = np.bincount(ranks(members, truth), minlength=members.shape[1] + 1)
    return counts, float(chisquare(counts).pvalue)


def flattest_inflation(members: FloatArray, truth: FloatArray, factors: npt.ArrayLike) -> tuple[float, float]:
    """The factor of ``factors`` whose inflation about the ensemble mean gives the flattest rank histogram.

    ``members`` ``(n, K)``, ``truth`` ``(n,)``. Flattest is the lowest chi-square statistic (the first
    of equals); returns it with the factor. Unlike matching the spread to the RMSE, a few large errors
    (heavy tails) do not widen every member: they weigh in the histogram as the share of outside ranks they are.
    """
    mean = members.mean(axis=1)
    deviation, residual = members - mean[:, None], truth - mean
    candidates = np.asarray(factors, dtype=np.float64)
    bins = members.shape[1] + 1
    statistics = [chisquare(np.bincount(ranks(f * deviation, residual), minlength=bins)).statistic for f in candidates]
    best = int(np.argmin(statistics))
    return float(candidates[best]), float(statistics[best])


def neighbour_correlation(values: npt.ArrayLike, mask: npt.NDArray[np.bool_], lag: int) -> float:
    """Correlation of ``values`` ``(days, ny, nx)`` between cells ``lag`` apart along either axis, both in ``mask``.

    For ranks at the rank histogram's lattice spacing, near 0 means its samples are nearly independent.
    """
    field = np.asarray(values, dtype=np.float64)
    first, second = [], []
    for dy, dx in ((lag, 0), (0, lag)):
        ny, nx = mask.shape[0] - dy, mask.shape[1] - dx
        both = mask[:ny, :nx] & mask[dy:, dx:]
        first.append(field[:, :ny, :nx][:, both].ravel())
        second.append(field[:, dy:, dx:][:, both].ravel())
    return float(np.corrcoef(np.concatenate(first), np.concatenate(second))[0, 1])


def crps(members: FloatArray, truth: FloatArray) -> float:
    """The ensemble CRPS, fair form: ``E|X - y| - E|X - X'| / 2`` with the unbiased pair mean."""
    k = members.shape[1]
    skill = np.abs(members - truth[:, None]).mean(axis=1)
    ordered = np.sort(members, axis=1)
    # sum over pairs |x_i - x_j| from the sorted members: sum_i (2i - k + 1) x_(i)
    pair_sum = 2 * np.sum((2 * np.arange(k) - k + 1) * ordered, axis=1)
    return float(np.mean(skill - pair_sum / (2 * k * (k - 1))))


def unobserved_cells(
    grid_lat: FloatArray, grid_lon: FloatArray, station_lat: FloatArray, station_lon: FloatArray, step: float
) -> npt.NDArray[np.bool_]:
    """Cells ``(ny, nx)`` with no station within one grid step in either direction."""
    lat, lon = np.meshgrid(grid_lat, grid_lon, indexing="ij")
    near = np.zeros(lat.shape, dtype=bool)
    for s_lat, s_lon in zip(station_lat, station_lon, strict=True):
        near |= (np.abs(lat - s_lat) <= step) & (np.abs(lon - s_lon) <= step)
    return ~near


def lattice_samples(mask: npt.NDArray[np.bool_], every: int, days: int, seed: int) -> npt.NDArray[np.bool_]:
    """Per day ``(days, ny, nx)``: ``mask`` kept on a lattice of ``every`` cells, shifted by a random offset each day.

    Cells ``every`` apart are nearly independent samples for a rank histogram; the daily shift
    samples every cell of ``mask`` alike (a fixed lattice would weigh the same few cells every day).
    """
    rng = np.random.default_rng(seed)
    chosen = np.zeros((days, *mask.shape), dtype=bool)
    for day, (row, column) in enumerate(rng.integers(0, every, size=(days, 2))):
        chosen[day, row::every, column::every] = True
    return chosen & mask
