"""A sample cube in the ESDC's form, with a documented, learnable truth and realistic cloud gaps.

Per-pixel properties (seeded, spatially smooth): elevation ``h`` (m, 0-1200) and a land-cover class ``c``
(forest, grassland, cropland, bare). At latitude ``phi`` and day of year ``d``:

* solar term ``S = cos(phi - decl(d))``, ``decl(d) = 23.44 sin(2 pi (d - 81) / 365)`` degrees;
* ``T2m`` (°C) ``= 11 - 0.6 (phi - 47) - 0.0065 h - 8 cos(2 pi (d - 15) / 365) + A``, with ``A`` smooth
  anomalies (std 3 K, 8-day lag correlation 0.6);
* the truth, in K: ``LST* = 273.15 + T2m + o_c + g_c * 14 S^2 * sigmoid((T2m - 4) / 3) + 2 S h / 1000
  - 0.25 softplus(-T2m)``, with surface offsets ``o = (-1, 0, 0.5, 2)`` and heating gains
  ``g = (0.35, 0.7, 0.9, 1.2)`` by class: non-linear in ``T2m`` through per-pixel properties, latitude and season;
* observed ``LST = LST* + N(0, noise_k^2)`` where clear.

Clouds: a smooth Gaussian field (8-day lag correlation 0.5) thresholded per step at a cloud probability of
``missing_share + 0.1 cos(2 pi (d - 15) / 365) + 0.03 (phi - phi_mid)``: clustered, persistent over steps,
more in winter and further north. ``LST*`` is stored apart (:func:`~ml4l.usecases.gapfill.cube.truth_path`),
for the oracle metrics only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.special import expit, ndtr

from ml4l.lake import Lake
from ml4l.usecases.gapfill.cube import (
    ELEVATION,
    LAND_COVER,
    LAND_COVER_VAR,
    LST,
    T2M,
    UNITS,
    cube_attrs,
    cube_path,
    eight_day_steps,
    grid_coords,
    land_mask,
    truth_path,
    write_cube,
)
from ml4l.usecases.gapfill.recipe import GapfillRecipe

SURFACE_OFFSET_K = np.array([-1.0, 0.0, 0.5, 2.0])
HEATING_GAIN = np.array([0.35, 0.7, 0.9, 1.2])
Float = npt.NDArray[np.float64]


def solar_term(lat: Float, doy: Float) -> Float:
    """``cos(phi - declination)`` for latitudes ``lat`` and days of year ``doy`` (broadcast)."""
    declination = 23.44 * np.sin(2 * np.pi * (doy - 81) / 365)
    return np.cos(np.radians(lat - declination))


def truth_lst(t2m: Float, land_cover: npt.NDArray[np.int8], elevation: Float, lat: Float, doy: Float) -> Float:
    """The noise-free LST (K) of the module's formula, broadcast over ``(time, lat, lon)``."""
    s = solar_term(lat, doy)
    heating = HEATING_GAIN[land_cover] * 14.0 * s**2 * expit((t2m - 4.0) / 3.0)
    cold = 0.25 * np.logaddexp(0.0, -t2m)
    return 273.15 + t2m + SURFACE_OFFSET_K[land_cover] + heating + 2.0 * s * elevation / 1000.0 - cold


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> Float:
    """Unit-variance Gaussian noise smoothed over the last two axes."""
    sigmas = (0,) * (len(shape) - 2) + (sigma, sigma)
    field = gaussian_filter(rng.standard_normal(shape), sigmas, mode="reflect")
    axes = (-2, -1)
    return (field - field.mean(axis=axes, keepdims=True)) / field.std(axis=axes, keepdims=True)


def _ar1(innovations: Float, rho: float) -> Float:
    """An AR(1) process along axis 0 with unit variance, from unit-variance innovations."""
    out = np.empty_like(innovations)
    out[0] = innovations[0]
    for k in range(1, len(out)):
        out[k] = rho * out[k - 1] + np.sqrt(1 - rho**2) * innovations[k]
    return out


def generate_cube(lake: Lake, recipe: GapfillRecipe) -> dict[str, str]:
    """Write the sample cube and its truth under ``gapfill/cubes/``; returns their paths."""
    spec = recipe.cube
    rng = np.random.default_rng(spec.seed)
    lat, lon = grid_coords(spec.north, spec.west, spec.rows, spec.cols)
    time = eight_day_steps(pd.Timestamp(spec.start), spec.years)
    doy = time.dayofyear.to_numpy(dtype=np.float64)[:, None, None]
    land = land_mask(lake, lat, lon)
    shape = (len(time), spec.rows, spec.cols)

    elevation = 1200.0 * ndtr(1.2 * _smooth_field(rng, (spec.rows, spec.cols), 6.0) - 0.6)
    cover_field = _smooth_field(rng, (spec.rows, spec.cols), 3.0)
    land_cover = np.digitize(cover_field, np.quantile(cover_field, [0.3, 0.55, 0.85])).astype(np.int8)
    phi = lat[None, :, None]
    anomaly = 3.0 * _ar1(_smooth_field(rng, shape, 12.0), 0.6)
    t2m = 11.0 - 0.6 * (phi - 47.0) - 0.0065 * elevation[None] - 8.0 * np.cos(2 * np.pi * (doy - 15) / 365) + anomaly
    truth = truth_lst(t2m, land_cover[None], elevation[None], phi, doy)
    noisy = truth + spec.noise_k * rng.standard_normal(shape)

    cloud_probability = np.clip(spec.missing_share + 0.1 * np.cos(2 * np.pi * (doy - 15) / 365) + 0.03 * (phi - lat.mean()), 0.05, 0.95)
    cloudy = ndtr(_ar1(_smooth_field(rng, shape, 4.0), 0.5)) < cloud_probability
    observed = ~cloudy & land[None]
    lst = np.where(observed, noisy, np.nan).astype(np.float32)

    attrs = cube_attrs("gapfill_sample_cube", recipe.model_dump_json())
    coords = {
        "time": time,
        "lat": ("lat", lat, {"units": "degrees_north"}),
        "lon": ("lon", lon, {"units": "degrees_east"}),
    }
    cube = xr.Dataset(
        {
            LST: (("time", "lat", "lon"), lst, {"units": UNITS[LST], "long_name": "Land surface temperature"}),
            T2M: (
                ("time", "lat", "lon"),
                t2m.astype(np.float32),
                {"units": UNITS[T2M], "long_name": "Air temperature at 2 m"},
            ),
            ELEVATION: (
                ("lat", "lon"),
                elevation.astype(np.float32),
                {"units": UNITS[ELEVATION], "long_name": "Elevation"},
            ),
            LAND_COVER_VAR: (
                ("lat", "lon"),
                land_cover,
                {
                    "long_name": "Land cover class",
                    "flag_values": list(range(len(LAND_COVER))),
                    "flag_meanings": " ".join(LAND_COVER),
                },
            ),
        },
        coords=coords,
        attrs=attrs,
    )
    truth_ds = xr.Dataset(
        {
            LST: (
                ("time", "lat", "lon"),
                np.where(land[None], truth, np.nan).astype(np.float32),
                {"units": UNITS[LST], "long_name": "Noise-free land surface temperature (oracle only)"},
            )
        },
        coords=coords,
        attrs={**attrs, "ml4l_kind": "gapfill_sample_truth"},
    )
    return {
        "cube": write_cube(lake, cube_path(lake, spec.name), cube, recipe.fill.time_chunk),
        "truth": write_cube(lake, truth_path(lake, spec.name), truth_ds, recipe.fill.time_chunk),
    }
