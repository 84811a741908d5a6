"""9 x 9 patches, vectorised: every centre of a day at once with ``sliding_window_view`` (no loop over pixels).

A sample is the centre of a 9 x 9 window whose 81 pixels are all valid for the band: unmasked and
with a QA code that says the band was observed (night: 1 or 3, day: 2 or 3, daily mean: 3), so the
patch mean and the target come from observations, never from the gap-fill. The target is the
centre's LST minus the patch mean (K). Features, in the seed's order plus time of day:
``day_cos, day_sin, time_cos, time_sin, long, lat, lst_avg, height_avg`` and 81 ``height_diff_RC``
(pixel height minus the patch mean height, m, row-major from the window's south-west corner).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from ml4l.usecases.downscale.recipe import PATCH, WINDOW_RADIUS
from ml4l.usecases.downscale.sample import OVERPASS_HOUR

BAND_INDEX = {"night": 0, "day": 1, "mean": 2}
VALID_QA = {"night": (1, 3), "day": (2, 3), "mean": (3,)}
"""QA codes under which each band was observed (0 no data, 1 no day, 2 no night, 3 both valid)."""
HEIGHT_DIFFS = [f"height_diff_{r}{c}" for r in range(PATCH) for c in range(PATCH)]
FEATURES = ["day_cos", "day_sin", "time_cos", "time_sin", "long", "lat", "lst_avg", "height_avg", *HEIGHT_DIFFS]
CENTRE_DIFF = FEATURES.index(f"height_diff_{WINDOW_RADIUS}{WINDOW_RADIUS}")
N_SCALAR = FEATURES.index(HEIGHT_DIFFS[0])
"""The features before the 81 height differences (each with its own scaler)."""

Float = npt.NDArray[np.float64]


def window_mean(field: Float) -> Float:
    """Mean of every 9 x 9 window of ``field`` (y, x), as (y - 8, x - 8): two separable 1-D passes."""
    rows = sliding_window_view(field, PATCH, axis=0).sum(axis=-1)
    return sliding_window_view(rows, PATCH, axis=1).sum(axis=-1) / PATCH**2


@dataclass(frozen=True)
class Heights:
    """The elevation's windows, built once per grid: every day reuses them."""

    dem: Float
    mean: Float
    """9 x 9 mean elevation (m) of each centre, (y - 8, x - 8)."""

    @classmethod
    def of(cls, dem: Float) -> Heights:
        return cls(dem=dem, mean=window_mean(dem))

    def diffs(self, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        """The 81 height differences of the windows at (window) ``rows, cols``, (n, 81) float32."""
        windows = sliding_window_view(self.dem, (PATCH, PATCH))[rows, cols].reshape(rows.size, PATCH * PATCH)
        return (windows - self.mean[rows, cols, None]).astype(np.float32)


@dataclass(frozen=True)
class Patches:
    """The samples of one day and band: features, target, and where they are."""

    features: npt.NDArray[np.float32]
    target: npt.NDArray[np.float32]
    oracle: npt.NDArray[np.float32]
    """The target of the noise-free truth (NaN when no truth was given)."""
    rows: npt.NDArray[np.int16]
    cols: npt.NDArray[np.int16]
    """Centre pixel (row south to north, column west to east) on the input grid."""


def valid_pixels(lst: Float, qa: Float, band: str) -> npt.NDArray[np.bool_]:
    """Pixels usable for ``band``: unmasked and observed according to QA."""
    return np.isfinite(lst) & np.isin(qa, VALID_QA[band])


def extract(
    lst: Float,
    qa: Float,
    heights: Heights,
    lat: Float,
    lon: Float,
    day: int,
    days_in_year: int,
    band: str,
    truth: Float | None = None,
) -> Patches:
    """Every sample of one day's ``band`` (``lst`` in K, (y, x), NaN where masked)."""
    lst = np.asarray(lst, dtype=np.float64)
    valid = valid_pixels(lst, qa, band)
    full = window_mean(valid.astype(np.float64)) > 1 - 0.5 / PATCH**2
    r, c = np.nonzero(full)
    clean = np.where(valid, lst, 0.0)
    lst_avg = window_mean(clean)[r, c]
    centre_r, centre_c = r + WINDOW_RADIUS, c + WINDOW_RADIUS
    target = clean[centre_r, centre_c] - lst_avg
    oracle = np.full(r.size, np.nan) if truth is None else truth[centre_r, centre_c] - window_mean(np.nan_to_num(truth))[r, c]
    angle_day = 2 * np.pi * day / days_in_year
    angle_time = 2 * np.pi * OVERPASS_HOUR[band] / 24
    n = r.size
    features = np.empty((n, len(FEATURES)), dtype=np.float32)
    features[:, :4] = (np.cos(angle_day), np.sin(angle_day), np.cos(angle_time), np.sin(angle_time))
    features[:, 4] = lon[centre_c]
    features[:, 5] = lat[centre_r]
    features[:, 6] = lst_avg
    features[:, 7] = heights.mean[r, c]
    features[:, N_SCALAR:] = heights.diffs(r, c)
    return Patches(
        features,
        target.astype(np.float32),
        oracle.astype(np.float32),
        centre_r.astype(np.int16),
        centre_c.astype(np.int16),
    )
