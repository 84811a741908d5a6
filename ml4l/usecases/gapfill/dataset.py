"""Samples of a cube and its seeded space x time block split.

A sample is one land cell at one step: ``FEATURES`` (T2m, day of year, latitude, the static features, and
the observed LST around it) and the observed LST as target. Only *visible* cells feed the neighbourhood:

* for fitting and the held-out blocks, observed training cells not under the cloud mask of another date
  (so the features never read a validation or test value, and training sees the neighbourhoods that real
  gaps leave);
* for the artificial gaps, every observed cell except the ones hidden;
* for filling, every observed cell.

The split labels every cell of the grid (observed or not) by blocks of ``block`` x ``block`` cells x
``time_block`` steps; cells of lower sets within ``buffer`` cells and ``time_buffer`` steps of a test or
validation cell are excluded, and :func:`split_cells` proves it with the shared leakage check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import uniform_filter

from ml4l.ml.splits import EXCLUDED, TEST, TRAIN, VALIDATION, check_spatial_leakage, space_time_split
from ml4l.ml.stats import RunningStats
from ml4l.usecases.gapfill.cube import LAND_COVER, Cube
from ml4l.usecases.gapfill.recipe import SplitSpec

FEATURES = ("t2m", "doy_sin", "doy_cos", "lat", "elevation_km", *LAND_COVER, "nbr_residual", "nbr_share")
Mask = npt.NDArray[np.bool_]


def split_cells(cube: Cube, spec: SplitSpec) -> npt.NDArray[np.int8]:
    """``(time, lat, lon)`` labels of every cell (sea cells included: blocks are parts of the grid), leakage-checked."""
    steps, rows, cols = (a.ravel() for a in np.indices(cube.shape))
    labels = space_time_split(
        rows,
        cols,
        steps,
        block=spec.block,
        time_block=spec.time_block,
        fractions=spec.fractions,
        buffer=spec.buffer,
        time_buffer=spec.time_buffer,
        seed=spec.seed,
    )
    check_spatial_leakage(rows, cols, labels, spec.buffer, steps=steps, time_buffer=spec.time_buffer)
    return labels.reshape(cube.shape)


def other_date_clouds(cube: Cube, seed: int) -> Mask:
    """For each step, the cloud mask (land not observed) of another step drawn at random: real gap shapes."""
    n = cube.shape[0]
    other = (np.arange(n) + np.random.default_rng(seed).integers(1, n, size=n)) % n
    return (~cube.observed)[other] & cube.land[None]


def neighbourhood(
    lst: npt.NDArray[np.float32], t2m: npt.NDArray[np.float32], visible: Mask, radius: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Mean of ``LST - 273.15 - T2m`` over the visible cells within ``radius`` cells (same step, the cell itself
    left out), and the visible share of that window; 0 and 0 where nothing is visible. Arrays: ``(time, lat, lon)``."""
    size = 2 * radius + 1
    window = (1, size, size)
    residual = np.where(visible, lst.astype(np.float64) - 273.15 - t2m, 0.0)
    seen = visible.astype(np.float64)
    total = uniform_filter(residual, window, mode="constant") * size**2 - residual
    count = np.rint(uniform_filter(seen, window, mode="constant") * size**2) - seen
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean.astype(np.float32), (count / (size**2 - 1)).astype(np.float32)


@dataclass(frozen=True)
class Samples:
    """Raw features ``x`` (columns :data:`FEATURES`), target ``y`` (LST, K), and where each row is."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float32]
    step: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    col: npt.NDArray[np.int64]

    @property
    def t2m(self) -> npt.NDArray[np.float32]:
        return self.x[:, 0]

    def take(self, keep: Mask) -> Samples:
        return Samples(self.x[keep], self.y[keep], self.step[keep], self.row[keep], self.col[keep])


def samples(cube: Cube, cells: Mask, visible: Mask, radius: int) -> Samples:
    """The rows of ``cells`` (a ``(time, lat, lon)`` mask), with neighbourhoods read from ``visible`` cells only."""
    step, row, col = np.nonzero(cells)
    nbr_mean, nbr_share = neighbourhood(cube.lst, cube.t2m, visible, radius)
    x = feature_matrix(cube, step, row, col, nbr_mean[step, row, col], nbr_share[step, row, col])
    return Samples(x, cube.lst[step, row, col], step, row, col)


def feature_matrix(
    cube: Cube,
    step: npt.NDArray[np.int64],
    row: npt.NDArray[np.int64],
    col: npt.NDArray[np.int64],
    nbr_mean: npt.NDArray[np.float32],
    nbr_share: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """The :data:`FEATURES` of the cells ``(step, row, col)``, given their neighbourhood values."""
    x = np.empty((step.size, len(FEATURES)), dtype=np.float32)
    angle = 2 * np.pi * (cube.time.dayofyear.to_numpy() - 1) / 365.25
    x[:, 0] = cube.t2m[step, row, col]
    x[:, 1] = np.sin(angle)[step]
    x[:, 2] = np.cos(angle)[step]
    x[:, 3] = cube.lat[row]
    x[:, 4] = cube.elevation[row, col] / 1000.0
    cover = cube.land_cover[row, col]
    for k in range(len(LAND_COVER)):
        x[:, 5 + k] = cover == k
    x[:, -2] = nbr_mean
    x[:, -1] = nbr_share
    return x


@dataclass(frozen=True)
class Split:
    """The held-out-block samples of a cube: train, validation and test rows, with the labels they came from."""

    labels: npt.NDArray[np.int8]
    train: Samples
    validation: Samples
    test: Samples


def held_out_samples(cube: Cube, labels: npt.NDArray[np.int8], radius: int, seed: int) -> Split:
    """Train, validation and test rows at observed land cells; neighbourhoods from visible training cells."""
    observed = cube.observed
    visible = observed & (labels == TRAIN) & ~other_date_clouds(cube, seed)
    rows = samples(cube, observed & (labels != EXCLUDED), visible, radius)
    label = labels[rows.step, rows.row, rows.col]
    return Split(labels, rows.take(label == TRAIN), rows.take(label == VALIDATION), rows.take(label == TEST))


def artificial_gap_samples(cube: Cube, labels: npt.NDArray[np.int8], radius: int, seed: int) -> Samples:
    """Observed test cells hidden under the cloud mask of another date; their neighbourhoods read every other
    observed cell, as filling would."""
    observed = cube.observed
    hidden = observed & (labels == TEST) & other_date_clouds(cube, seed + 1)
    return samples(cube, hidden, observed & ~hidden, radius)


def fit_statistics(train: Samples) -> tuple[RunningStats, RunningStats]:
    """Feature and target-residual (``LST - 273.15 - T2m``) statistics of the training rows only."""
    features = RunningStats(len(FEATURES)).update(train.x)
    residual = RunningStats(1).update(train.y.astype(np.float64) - 273.15 - train.t2m)
    return features, residual
