"""Sample inputs in the seed's exact forms, from a documented, learnable truth.

Files (see ``layout.py``):

* the yearly LST NetCDF: one unnamed ``xarray.DataArray``, so its variable is
  ``__xarray_dataarray_variable__``, dims ``(time, band, y, x)``; ``time`` is the 0-based day of
  the year with skipped days, ``y`` runs south to north and ``x`` west to east on the seed's grid
  (603 x 409 between 28.9967..34.0078 N and 33.2003..36.5965 E, about 1/120 degree); bands
  0 night LST, 1 day LST, 2 daily mean, 3 QA (0 no data, 1 no day, 2 no night, 3 both valid).
  LST is in 0.02 K counts (float32, whole numbers), NaN-filled so netCDF4 reads a masked array:
  the sea, and a few random land pixels each day. Cloudy pixels carry a coarse gap-filled value
  and say so in QA, as in the seed's data set.
* an int16 SRTM-like elevation GeoTIFF (EPSG:4326, north-up, sea = 0) on the same pixel centres.
* the truth without noise, K, ``lst_noise_free(time, band, y, x)`` with bands night, day, mean.

The truth, per pixel, day ``d`` and band (night at 01:30, day at 13:30 local solar time),
with ``s = sin(2 pi (d - 105) / 365.25)`` (summer > 0) and ``h`` the elevation in km::

    day    = 300 + 10 s + w_d + 1.2 (lon - 35) - 1.5 (lat - 31.5) - (6.5 + 2.5 s) h + 20 max(cos i, 0)
    night  = 283 +  7 s + v_d - 0.8 (lat - 31.5) - (3.5 - 1.5 s) h - 40 max(h3 - h, 0)
    mean   = (day + night) / 2

``cos i`` is the cosine of the sun's incidence on the slope (the sun at 13:30 of day ``d``), ``h3``
the 3 x 3 mean elevation (cold air pools in hollows at night), ``w_d, v_d`` daily weather offsets.
Observed = truth + N(0, ``noise_k``), rounded to 0.02 K. The large-scale terms are linear in
lat/lon, so the centre-minus-9x9-mean target keeps the lapse rate, slope, aspect, season and time
of day terms: learnable from the patch's heights, and not by one lapse rate alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ml4l.lake import Lake
from ml4l.usecases.downscale.layout import DownscaleLake
from ml4l.usecases.downscale.recipe import SampleSpec

SEED_LAT = (28.996716325654262, 34.00777509644337, 603)
SEED_LON = (33.20034536095077, 36.59654466075468, 409)
"""The seed's grid: first and last pixel centre and count, y south to north, x west to east."""

LST_UNITS = "0.02 K"
LST_SCALE_K = 0.02
VALID_COUNTS = (7500, 65535)
QA_NO_DATA, QA_NO_DAY, QA_NO_NIGHT, QA_BOTH = 0, 1, 2, 3
BANDS = ("night", "day", "mean", "qa")
OVERPASS_HOUR = {"night": 1.5, "day": 13.5, "mean": 7.5}
"""Local solar time of each band (the daily mean sits half-way between the overpasses)."""
VARIABLE = "__xarray_dataarray_variable__"
TRUTH_VARIABLE = "lst_noise_free"

Array = npt.NDArray[np.float64]


def seed_axes(spec: SampleSpec) -> tuple[Array, Array]:
    """Latitudes (ascending) and longitudes of the recipe's window on the seed grid."""
    lat = np.linspace(*SEED_LAT)[spec.row_offset : spec.row_offset + spec.rows]
    lon = np.linspace(*SEED_LON)[spec.col_offset : spec.col_offset + spec.cols]
    return lat, lon


def sample_days(spec: SampleSpec) -> npt.NDArray[np.int32]:
    """The days of the year in the file: every ``day_step``-th, less the skipped ones."""
    days_in_year = 366 if spec.year % 4 == 0 and (spec.year % 100 != 0 or spec.year % 400 == 0) else 365
    days = np.arange(0, days_in_year, spec.day_step, dtype=np.int32)
    return days[~np.isin(days, spec.skipped_days)]


def terrain(seed: int = 2020) -> npt.NDArray[np.int16]:
    """SRTM-like elevation (m) on the whole seed grid, rows south to north; sea is 0.

    Coastal plain, a central ridge, the Jordan rift down to the Dead Sea (-415 m), Mount Hermon,
    and fractal roughness at 1-8 km so that 9 x 9 patches have slopes and aspects.
    """
    lat, lon = np.meshgrid(np.linspace(*SEED_LAT), np.linspace(*SEED_LON), indexing="ij")
    rng = np.random.default_rng(seed)
    coast = 34.30 + 0.55 * (lat - 31.3) + 0.03 * np.sin(9 * lat)
    sea = lon < coast
    inland = np.clip(lon - coast, 0, None)
    ridge_axis = 35.15 + 0.1 * (lat - 31.5)
    height = 80 + 900 * np.tanh(inland / 0.3) * np.exp(-(((lon - ridge_axis) / 0.35) ** 2)) + 250 * (lat < 31.0) * np.tanh(inland / 0.4)
    height += 2300 * np.exp(-((lat - 33.42) ** 2 + ((lon - 35.85) / 0.8) ** 2) / 0.12**2)
    rift = np.exp(-(((lon - (35.52 + 0.02 * (lat - 31.5))) / 0.07) ** 2))
    height = height * (1 - rift) + rift * np.where((lat > 31.05) & (lat < 31.8), -415.0, -150.0 + 60 * (lat - 31.8))
    rough = sum(a * _unit_field(rng, lat.shape, sigma) for a, sigma in ((25, 0.8), (45, 1.6), (70, 3.0), (90, 6.0)))
    height += rough * (0.4 + np.tanh(np.clip(height, 0, None) / 400))
    dead_sea = (rift > 0.6) & (lat > 31.1) & (lat < 31.75)
    height = np.where(dead_sea, -415.0, height)
    height = np.where(sea, 0.0, np.clip(height, -415, 2687))
    return np.rint(height).astype(np.int16)


def _unit_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> Array:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return field / field.std()


@dataclass(frozen=True)
class SampleTruth:
    """The window's noise-free LST (K) per day and band, and what the files are made of."""

    lat: Array
    lon: Array
    days: npt.NDArray[np.int32]
    dem: npt.NDArray[np.int16]
    truth: npt.NDArray[np.float32]
    """(time, 3, y, x): night, day, mean in K; NaN over the sea."""
    sea: npt.NDArray[np.bool_]


def sun_incidence(dem_m: Array, lat: Array, lon: Array, day: int, hour: float = 13.5) -> Array:
    """Cosine of the sun's incidence angle on each pixel's slope (rows south to north)."""
    dy = (lat[1] - lat[0]) * 110_574.0
    dx = (lon[1] - lon[0]) * 111_320.0 * np.cos(np.radians(lat))[:, None]
    dz_north, dz_east = np.gradient(dem_m, axis=0) / dy, np.gradient(dem_m, axis=1) / dx
    norm = np.sqrt(1 + dz_north**2 + dz_east**2)
    phi = np.radians(lat)[:, None]
    declination = np.radians(23.44) * np.sin(2 * np.pi * (day - 80) / 365.25)
    hour_angle = np.radians(15.0 * (hour - 12.0))
    # the sun's unit vector: east, north, up
    east = -np.cos(declination) * np.sin(hour_angle)
    north = np.cos(phi) * np.sin(declination) - np.sin(phi) * np.cos(declination) * np.cos(hour_angle)
    up = np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.cos(hour_angle)
    return (-dz_east * east - dz_north * north + up) / norm


def make_truth(spec: SampleSpec) -> SampleTruth:
    """The noise-free truth of the recipe's window and days (formula in the module docstring)."""
    lat, lon = seed_axes(spec)
    rows, cols = (
        slice(spec.row_offset, spec.row_offset + spec.rows),
        slice(spec.col_offset, spec.col_offset + spec.cols),
    )
    dem = terrain(spec.seed)[rows, cols]
    h = dem.astype(np.float64) / 1000.0
    hollow = np.clip(ndimage.uniform_filter(h, 3, mode="nearest") - h, 0, None)
    days = sample_days(spec)
    weather = np.random.default_rng(spec.seed + 1).normal(0.0, 2.0, size=(len(days), 2))
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    truth = np.empty((len(days), 3, spec.rows, spec.cols), dtype=np.float32)
    for t, day in enumerate(days):
        season = np.sin(2 * np.pi * (day - 105) / 365.25)
        incidence = np.clip(sun_incidence(dem.astype(np.float64), lat, lon, int(day), OVERPASS_HOUR["day"]), 0, None)
        daytime = 300 + 10 * season + weather[t, 0] + 1.2 * (glon - 35) - 1.5 * (glat - 31.5) - (6.5 + 2.5 * season) * h + 20.0 * incidence
        night = 283 + 7 * season + weather[t, 1] - 0.8 * (glat - 31.5) - (3.5 - 1.5 * season) * h - 40.0 * hollow
        truth[t] = np.stack([night, daytime, (night + daytime) / 2])
    sea = dem == 0
    truth[:, :, sea] = np.nan
    return SampleTruth(lat=lat, lon=lon, days=days, dem=dem, truth=truth, sea=sea)


def observe(sample: SampleTruth, spec: SampleSpec) -> npt.NDArray[np.float32]:
    """The LST file's data (time, 4, y, x) in 0.02 K counts with NaN as the mask: truth + noise where
    clear, a coarse gap-fill where cloudy (QA says which), the sea and a few land pixels masked."""
    rng = np.random.default_rng(spec.seed + 2)
    n_days = len(sample.days)
    out = np.empty((n_days, 4, spec.rows, spec.cols), dtype=np.float32)
    land = ~sample.sea
    for t in range(n_days):
        observed = sample.truth[t, :2] + rng.normal(0.0, spec.noise_k, size=(2, spec.rows, spec.cols))
        clear = [_clear_sky(rng, sample.sea.shape, fraction) for fraction in (0.2, 0.3)]  # night, day
        land_share = ndimage.uniform_filter(land.astype(np.float64), 15, mode="nearest")
        coarse = ndimage.uniform_filter(np.nan_to_num(sample.truth[t, :2]), (1, 15, 15), mode="nearest") / np.maximum(land_share, 1e-6)
        gap_filled = coarse + rng.normal(0.0, 1.5, size=coarse.shape)
        values = np.where(np.stack(clear), observed, gap_filled)
        counts = np.rint(np.stack([values[0], values[1], values.mean(axis=0)]) / LST_SCALE_K)
        qa = np.where(land, 2 * clear[1] + 1 * clear[0], QA_NO_DATA)
        dropped = np.zeros_like(land)
        dropped.flat[rng.choice(np.flatnonzero(land), size=min(20, int(land.sum())), replace=False)] = True
        qa = np.where(dropped, QA_NO_DATA, qa)
        counts[:, sample.sea | dropped] = np.nan
        out[t, :3], out[t, 3] = counts, qa
    return out


def _clear_sky(rng: np.random.Generator, shape: tuple[int, int], cloud_fraction: float) -> npt.NDArray[np.bool_]:
    clouds = ndimage.gaussian_filter(rng.standard_normal(shape), 5, mode="reflect")
    return clouds < np.quantile(clouds, 1 - cloud_fraction)


def write_lst(path: str, sample: SampleTruth, counts: npt.NDArray[np.float32], units: str = LST_UNITS) -> None:
    """The yearly NetCDF as the seed had it: an unnamed DataArray (time, band, y, x)."""
    import xarray as xr

    array = xr.DataArray(
        counts,
        dims=("time", "band", "y", "x"),
        coords={"time": sample.days, "band": np.arange(counts.shape[1]), "y": sample.lat, "x": sample.lon},
        attrs={
            "units": units,
            "valid_min": VALID_COUNTS[0],
            "valid_max": VALID_COUNTS[1],
            "bands": "0 night LST, 1 day LST, 2 daily mean, 3 QA (0 no data, 1 no day, 2 no night, 3 both valid)",
        },
    )
    array.to_netcdf(path, engine="h5netcdf")


def write_truth(path: str, sample: SampleTruth) -> None:
    import xarray as xr

    array = xr.DataArray(
        sample.truth,
        dims=("time", "band", "y", "x"),
        name=TRUTH_VARIABLE,
        coords={"time": sample.days, "band": list(BANDS[:3]), "y": sample.lat, "x": sample.lon},
        attrs={"units": "K", "description": "ml4l.usecases.downscale.sample truth without noise"},
    )
    array.to_netcdf(path, engine="h5netcdf")


def write_dem(path: str, dem: npt.NDArray[np.int16], lat: Array, lon: Array) -> None:
    """int16 GeoTIFF, EPSG:4326, north-up (first row is the northernmost), pixel-centred on ``lat``/``lon``."""
    import rasterio
    from rasterio.transform import from_origin

    step_lat, step_lon = (lat[-1] - lat[0]) / (len(lat) - 1), (lon[-1] - lon[0]) / (len(lon) - 1)
    transform = from_origin(lon[0] - step_lon / 2, lat[-1] + step_lat / 2, step_lon, step_lat)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=dem.shape[0],
        width=dem.shape[1],
        count=1,
        dtype="int16",
        crs="EPSG:4326",
        transform=transform,
    ) as out:
        out.write(dem[::-1], 1)


def generate(lake: Lake, spec: SampleSpec) -> dict[str, str]:
    """Write the LST NetCDF, the DEM and the noise-free truth into the lake; returns their paths."""
    paths = DownscaleLake(lake)
    sample = make_truth(spec)
    counts = observe(sample, spec)
    writers: dict[str, tuple[str, Callable[[str], None]]] = {
        "lst": (paths.lst(spec.year), lambda p: write_lst(p, sample, counts)),
        "dem": (paths.dem(), lambda p: write_dem(p, sample.dem, sample.lat, sample.lon)),
        "truth": (paths.truth(spec.year), lambda p: write_truth(p, sample)),
    }
    for target, writer in writers.values():
        write_file(lake, target, writer)
    return {name: target for name, (target, _) in writers.items()}


def write_file(lake: Lake, target: str, writer: Callable[[str], None]) -> None:
    """Write ``target`` through a local temporary file swapped in whole (never half-written)."""
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, target.rsplit("/", 1)[1])
        writer(local)
        with lake.replace_whole(target) as staging:
            if lake.is_local:
                shutil.move(local, staging)
            else:
                lake.fs.put_file(local, staging)
