"""Daily T2m anomaly fields, station networks and pseudo-observations.

The synthetic truth (the demo's fields)
---------------------------------------
On a regular lat-lon grid, a latent Gaussian field ``g`` with a Matérn-3/2 correlation of
e-folding length ``correlation_km`` (great-circle distance) evolves as an AR(1) process in days,
``g[t] = persistence * g[t-1] + sqrt(1 - persistence**2) * innovation``. The anomaly is::

    anomaly = std(day of year) * tanh(front_sharpness * g) / c

with ``c`` the standard deviation of ``tanh(front_sharpness * Z)`` for ``Z ~ N(0, 1)`` (so the
anomaly has the seasonal standard deviation) and ``std`` running from ``std_winter_k`` in mid
January to ``std_summer_k`` in mid July. The tanh makes warm and cold air masses with fronts
between them: the fields are not Gaussian, so a linear prior (PCA, optimal interpolation) is not
the best possible one, while a generator that learns the shape can be. The fields are the truth
without noise; observations add Gaussian noise of ``sigma_o``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from ml4l.errors import InputError
from ml4l.geo import EARTH_RADIUS_KM
from ml4l.usecases.assimilation.recipe import FieldsConfig, StationsConfig

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Grid:
    """Cell centres of a regular lat-lon grid, latitude ascending."""

    lat: FloatArray
    lon: FloatArray

    @classmethod
    def of(cls, config: FieldsConfig) -> Grid:
        step = config.resolution_deg
        return cls(
            np.asarray(config.lat_south + step * (np.arange(config.ny) + 0.5), dtype=np.float64),
            np.asarray(config.lon_west + step * (np.arange(config.nx) + 0.5), dtype=np.float64),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.lat), len(self.lon)

    @property
    def step(self) -> float:
        return float(self.lat[1] - self.lat[0])

    def fractional_index(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Fractional (row, column) of points; the cell centres are integers."""
        return (
            (np.asarray(lat, dtype=np.float64) - self.lat[0]) / self.step,
            (np.asarray(lon, dtype=np.float64) - self.lon[0]) / self.step,
        )

    def contains(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Points inside the hull of the cell centres, where bilinear interpolation is defined."""
        r, c = self.fractional_index(lat, lon)
        ny, nx = self.shape
        return np.isfinite(r) & np.isfinite(c) & (r >= 0) & (r <= ny - 1) & (c >= 0) & (c <= nx - 1)


def great_circle_km(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def matern32(distance_km: FloatArray, length_km: float) -> FloatArray:
    scaled = np.sqrt(3.0) * distance_km / length_km
    return (1 + scaled) * np.exp(-scaled)


def seasonal_std(days: pd.DatetimeIndex, config: FieldsConfig) -> FloatArray:
    phase = 2 * np.pi * (days.dayofyear.to_numpy() - 15) / 365.25
    mid, amplitude = (config.std_winter_k + config.std_summer_k) / 2, (config.std_winter_k - config.std_summer_k) / 2
    return mid + amplitude * np.cos(phase)


def front_scale(sharpness: float) -> float:
    """Standard deviation of ``tanh(sharpness * Z)``, Z standard normal (Gauss-Hermite, 80 nodes)."""
    if sharpness == 0:
        return 1.0
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sqrt(np.sum(weights * np.tanh(sharpness * nodes) ** 2) / np.sqrt(2 * np.pi)))


def shape_anomaly(latent: FloatArray, sharpness: float) -> FloatArray:
    return latent if sharpness == 0 else np.tanh(sharpness * latent) / front_scale(sharpness)


def synthetic_fields(config: FieldsConfig) -> xr.Dataset:
    """The demo's daily anomaly fields (see the module docstring), ``anomaly(time, lat, lon)`` in K."""
    grid = Grid.of(config)
    days = pd.date_range(f"{config.first_year}-01-01", f"{config.first_year + config.years - 1}-12-31", freq="D")
    lat2, lon2 = (a.ravel() for a in np.meshgrid(grid.lat, grid.lon, indexing="ij"))
    covariance = matern32(great_circle_km(lat2[:, None], lon2[:, None], lat2[None, :], lon2[None, :]), config.correlation_km)
    factor = np.linalg.cholesky(covariance + 1e-8 * np.eye(len(lat2)))
    rng = np.random.default_rng(config.seed)
    innovations = rng.standard_normal((len(days), len(lat2))) @ factor.T
    latent = np.empty_like(innovations)
    latent[0] = innovations[0]
    keep, fresh = config.persistence, np.sqrt(1 - config.persistence**2)
    for t in range(1, len(days)):
        latent[t] = keep * latent[t - 1] + fresh * innovations[t]
    anomaly = shape_anomaly(latent, config.front_sharpness) * seasonal_std(days, config)[:, None]
    return xr.Dataset(
        {
            "anomaly": (
                ("time", "lat", "lon"),
                anomaly.reshape(len(days), *grid.shape).astype(np.float32),
                {"units": "K", "long_name": "daily mean 2 m temperature anomaly"},
            )
        },
        coords={
            "time": days.values,
            "lat": ("lat", grid.lat, {"units": "degrees_north"}),
            "lon": ("lon", grid.lon, {"units": "degrees_east"}),
        },
        attrs={"source": "synthetic", "truth": "noise-free (ml4l.usecases.assimilation.fields)"},
    )


def fields_from_era(t2m: xr.DataArray, config: FieldsConfig, train_years: tuple[int, int], harmonics: int = 3) -> xr.Dataset:
    """Anomalies from an ERA store's hourly ``t2m(time, cell)`` with ``latitude``/``longitude`` coords.

    Daily means are averaged into the recipe's lat-lon boxes; the day-of-year climatology is a
    mean plus ``harmonics`` annual harmonics per box, fitted by least squares on the training
    years only, then subtracted from every day.
    """
    grid = Grid.of(config)
    daily = t2m.resample(time="1D").mean()
    r, c = grid.fractional_index(t2m["latitude"].values, ((t2m["longitude"].values - config.lon_west) % 360) + config.lon_west)
    rows, cols = np.rint(r).astype(np.int64), np.rint(c).astype(np.int64)
    inside = (rows >= 0) & (rows < grid.shape[0]) & (cols >= 0) & (cols < grid.shape[1])
    if not inside.any():
        raise InputError("era/timevar.zarr", "no ERA cell falls inside the assimilation grid")
    box = rows[inside] * grid.shape[1] + cols[inside]
    counts = np.bincount(box, minlength=grid.shape[0] * grid.shape[1])
    values = daily.values[:, inside].astype(np.float64)
    sums = np.zeros((values.shape[0], counts.size))
    np.add.at(sums.T, box, values.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        boxed = np.where(counts > 0, sums / counts, np.nan)
    days = pd.DatetimeIndex(daily["time"].values)
    design = _harmonic_design(days, harmonics)
    years = days.year.to_numpy()
    fit_rows = (years >= train_years[0]) & (years <= train_years[1])
    if fit_rows.sum() < design.shape[1]:
        raise InputError("era/timevar.zarr", f"{fit_rows.sum()} training days cannot fit a climatology of {design.shape[1]} terms")
    coefficients, *_ = np.linalg.lstsq(design[fit_rows], np.nan_to_num(boxed[fit_rows]), rcond=None)
    anomaly = boxed - design @ coefficients
    return xr.Dataset(
        {
            "anomaly": (
                ("time", "lat", "lon"),
                anomaly.reshape(len(days), *grid.shape).astype(np.float32),
                {"units": "K", "long_name": "daily mean 2 m temperature anomaly"},
            )
        },
        coords={"time": days.values, "lat": grid.lat, "lon": grid.lon},
        attrs={"source": "ERA store t2m", "climatology": f"mean + {harmonics} harmonics, fitted on {train_years[0]}..{train_years[1]}"},
    )


@dataclass(frozen=True)
class SeasonalScale:
    """The anomaly's standard deviation by day of year, in K: the square root of a mean and annual
    harmonics fitted by least squares to each training day's mean square anomaly.

    Dividing by it makes the anomalies' spread the same through the year, so one generator error and
    one observation weighting hold in winter and in summer alike.
    """

    coefficients: tuple[float, ...]

    @classmethod
    def fit(cls, anomaly: FloatArray, times: npt.ArrayLike, harmonics: int = 2) -> SeasonalScale:
        days = pd.DatetimeIndex(np.asarray(times))
        mean_square = np.mean(np.square(anomaly.reshape(len(days), -1)), axis=1)
        coefficients, *_ = np.linalg.lstsq(_harmonic_design(days, harmonics), mean_square, rcond=None)
        return cls(tuple(float(c) for c in coefficients))

    def at(self, times: npt.ArrayLike) -> FloatArray:
        """The scale ``(days,)`` of each day, in K."""
        days = pd.DatetimeIndex(np.asarray(times))
        variance = _harmonic_design(days, (len(self.coefficients) - 1) // 2) @ np.asarray(self.coefficients)
        if (variance <= 0).any():
            raise ValueError("the seasonal variance fit is not positive on every day")
        return np.asarray(np.sqrt(variance), dtype=np.float64)


def _harmonic_design(days: pd.DatetimeIndex, harmonics: int) -> FloatArray:
    phase = 2 * np.pi * days.dayofyear.to_numpy() / 365.25
    columns = [np.ones(len(days))]
    for k in range(1, harmonics + 1):
        columns += [np.cos(k * phase), np.sin(k * phase)]
    return np.stack(columns, axis=1)


def stations(grid: Grid, config: StationsConfig) -> pd.DataFrame:
    """Station locations: ``dense`` in the grid's western half, ``sparse`` over the whole grid."""
    rng = np.random.default_rng(config.seed)
    south, north = grid.lat[0], grid.lat[-1]
    west, east, middle = grid.lon[0], grid.lon[-1], (grid.lon[0] + grid.lon[-1]) / 2
    lat = np.concatenate([rng.uniform(south, north, config.dense), rng.uniform(south, north, config.sparse)])
    lon = np.concatenate([rng.uniform(west, middle, config.dense), rng.uniform(west, east, config.sparse)])
    return pd.DataFrame({"id": [f"S{i:04d}" for i in range(len(lat))], "lat": lat, "lon": lon})


def interpolation_weights(grid: Grid, lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Bilinear interpolation ``H``: for each point, 4 flat cell indices and their weights.

    Raises ``ValueError`` naming the first point outside the grid or with a NaN coordinate.
    """
    lat_a, lon_a = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    inside = grid.contains(lat_a, lon_a)
    if not inside.all():
        i = int(np.flatnonzero(~inside)[0])
        raise ValueError(
            f"{(~inside).sum()} points lie outside the grid or have NaN coordinates, e.g. point {i} at ({lat_a[i]}, {lon_a[i]})"
        )
    r, c = grid.fractional_index(lat_a, lon_a)
    ny, nx = grid.shape
    r0 = np.minimum(np.floor(r).astype(np.int64), ny - 2)
    c0 = np.minimum(np.floor(c).astype(np.int64), nx - 2)
    fr, fc = r - r0, c - c0
    index = np.stack([r0 * nx + c0, r0 * nx + c0 + 1, (r0 + 1) * nx + c0, (r0 + 1) * nx + c0 + 1], axis=1)
    weights = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc], axis=1)
    return index, weights


def interpolate(fields: FloatArray, index: npt.NDArray[np.int64], weights: FloatArray) -> FloatArray:
    """``H`` applied to fields ``(..., ny, nx)``: values ``(..., points)``."""
    flat = fields.reshape(*fields.shape[:-2], -1)
    return np.sum(flat[..., index] * weights, axis=-1)


def pseudo_observations(truth: xr.DataArray, network: pd.DataFrame, grid: Grid, sigma_o: float, seed: int) -> pd.DataFrame:
    """The truth interpolated to every station on every day of ``truth``, plus N(0, sigma_o^2) noise."""
    index, weights = interpolation_weights(grid, network["lat"], network["lon"])
    exact = interpolate(truth.values.astype(np.float64), index, weights)
    noisy = exact + np.random.default_rng(seed).normal(0.0, sigma_o, exact.shape)
    days = np.repeat(truth["time"].values, len(network))
    return pd.DataFrame(
        {
            "time": days,
            "id": np.tile(network["id"].to_numpy(), len(truth["time"])),
            "lat": np.tile(network["lat"].to_numpy(), len(truth["time"])),
            "lon": np.tile(network["lon"].to_numpy(), len(truth["time"])),
            "value": noisy.ravel().astype(np.float64),
            "sigma_o": sigma_o,
        }
    )
