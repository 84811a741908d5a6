"""A synthetic Earth: smooth, deterministic ERA-like fields and a learnable MODIS LST truth.

Every field is an analytic function of latitude, longitude (degrees) and time
(hours since 1970-01-01 UTC), so ERA grid points and MODIS pixels sample the same
world at their own locations and times. Spatial noise is a sum of random plane
waves on the 3-D unit vector, so it is continuous across the poles and the 0/360 seam.

The truth
---------
ERA's weather here is computed with the *V15* constants; the surface really has
the *V20* constants and the month's lake cover. MODIS observes, at each pixel and
its overpass time ``t``::

    surface = skt
        + 2.1
        + 0.6 * (skt - t2m) * (1 - 0.6 * cvh_v20)                # daytime heating ERA underestimates
        + 3.0 * tanh((t2m - d2m - 6) / 5)                        # dry air, hotter skin
        + 4.0 * (1 - cvh_v20 - cvl_v20).clip(0) * (1 - fal / 0.35).clip(0)   # bare, dark ground
        - 4.0 * clake * (skt - t2m).clip(0) / 6                  # open water heats less
        - 2.0 * si10_v20                                         # glaciers stay cold
        - lapse_rate * clear_sky_height                          # MODIS sees the valleys
    lst = min(surface, 273.15) where si10_v20 > 0.5 else surface  # melting ice stays at 0 °C
        + noise(0.9 K)                                           # sensor noise

    clear_sky_height = -sdor * (0.4 + 0.8 * (1 - isor)) * (0.5 + 0.5 * tanh((10 - (t2m - d2m)) / 4))   # m
    lapse_rate = 0.006 * (1 - 2 * sd / (sd + 0.03))             # K/m, reversed under snow

``skt``, ``t2m``, ``d2m``, ``fal`` and ``sd`` are ERA's fields at the pixel's location and
time, ``sdor`` and ``isor`` ERA's sub-grid orography there (V15). The last term is how
MODIS samples the relief below ERA's resolution: on moist afternoons (small dew-point
depression) cumulus caps the ridges, so the pixels it sees clear lie in the valleys,
below the grid box's mean height by a share of the sub-grid relief ``sdor`` that is
larger in ridge-and-valley terrain (``isor`` near 0); they are warmer by the 6 K/km
lapse rate, and colder where snow-covered valleys hold cold-air pools. Over the demo's
matched land pixels off the glaciers ERA's skt is colder than this truth by 3.6 K on
average, with a mean absolute error of 3.8 K (3.6 to 3.9 K are reported for ERA5
against MODIS Aqua day). Everything above except the noise is a function of ERA's
fields at the pixel, so a model can learn it; what a model given ERA's fields at the
nearest grid point and hour cannot see is how they vary between that point and the
pixels. The melting-ice cap makes the truth far from linear in ERA's fields, as the
real one is: on the demo, least squares on the features is left with about half of
skt's error, which a nonlinear model can reduce further.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numba
import numpy as np

from ml4l.geo import EARTH_RADIUS_KM, unit_vectors
from ml4l.types import BoolArray, FloatArray

GRAVITY = 9.80665
SENSOR_NOISE_K = 0.9
MELTING_POINT_K = 273.15
MODIS_OVERPASS_LOCAL_HOUR = 13.5
_ORBIT_HOURS = 98.8 / 60.0
_SWATH_HALF_WIDTH_DEG = 10.5
_NOISE_BLOCK = 1 << 15
_PHASE_EPOCH_HOURS = 429528.0  # 2019-01-01, keeps time phases small for the 2016-2021 period


@dataclass(frozen=True)
class _Waves:
    vectors: FloatArray  # (k, 3), wavenumber in 1/radian
    phases: FloatArray  # (k,)
    frequencies: FloatArray  # (k,), radians per hour
    amplitude: float


@numba.njit(cache=True)
def _wave_phases(
    points: FloatArray, hours: FloatArray, vectors: FloatArray, phases: FloatArray, frequencies: FloatArray, timed: bool, out: np.ndarray
) -> None:
    """``out[i, j]``: float32 of wave j's phase at point i, in float64 added in the order NumPy's outer products
    added them (phase, x, y, z, then time), so the fields keep their bytes."""
    for i in range(points.shape[0]):
        x, y, z = points[i, 0], points[i, 1], points[i, 2]
        for j in range(phases.size):
            phase = phases[j] + x * vectors[j, 0]
            phase += y * vectors[j, 1]
            phase += z * vectors[j, 2]
            if timed:
                phase += hours[i] * frequencies[j]
            out[i, j] = np.float32(phase)


@numba.njit(cache=True)
def _row_sums(values: np.ndarray, out: FloatArray) -> None:
    """Sum of each row of float32 ``values`` in float64, in NumPy's pairwise order (8 accumulators) for rows of 8 to 128."""
    width = values.shape[1]
    for i in range(values.shape[0]):
        if width < 8 or width % 8:
            total = 0.0
            for j in range(width):
                total += np.float64(values[i, j])
            out[i] = total
            continue
        r0, r1, r2, r3 = np.float64(values[i, 0]), np.float64(values[i, 1]), np.float64(values[i, 2]), np.float64(values[i, 3])
        r4, r5, r6, r7 = np.float64(values[i, 4]), np.float64(values[i, 5]), np.float64(values[i, 6]), np.float64(values[i, 7])
        for j in range(8, width, 8):
            r0 += np.float64(values[i, j])
            r1 += np.float64(values[i, j + 1])
            r2 += np.float64(values[i, j + 2])
            r3 += np.float64(values[i, j + 3])
            r4 += np.float64(values[i, j + 4])
            r5 += np.float64(values[i, j + 5])
            r6 += np.float64(values[i, j + 6])
            r7 += np.float64(values[i, j + 7])
        out[i] = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))


TRUTH_CONSTANTS = {15: ("z", "cvh", "lsm", "cvl", "slt"), 20: ("cvh", "cvl", "cl", "si10")}
"""The climate constants :meth:`SyntheticEarth.lst` reads (V15 through :meth:`SyntheticEarth.weather`), by version."""


@dataclass(frozen=True)
class TimeInvariant:
    """The fields of the truth that do not change in time, at some points (:meth:`SyntheticEarth.time_invariant`)."""

    v15: dict[str, FloatArray]
    v20: dict[str, FloatArray]
    valley_depth: FloatArray


class SyntheticEarth:
    """Deterministic fields of a synthetic planet, keyed by ``seed``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def _waves(self, name: str, scale_km: float, period_hours: float | None, k: int = 16) -> _Waves:
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        directions = rng.normal(size=(k, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wavenumber = EARTH_RADIUS_KM / scale_km * rng.uniform(0.5, 1.5, size=(k, 1))
        if period_hours is None:
            frequencies = np.zeros(k)
        else:
            frequencies = 2 * np.pi / period_hours * rng.uniform(0.5, 1.5, size=k) * rng.choice([-1, 1], k)
        return _Waves(directions * wavenumber, rng.uniform(0, 2 * np.pi, k), frequencies, np.sqrt(2.0 / k))

    def noise(
        self, name: str, xyz: FloatArray, scale_km: float, t: FloatArray | float = 0.0, period_hours: float | None = None
    ) -> FloatArray:
        """A smooth field with zero mean and unit variance, varying over ``scale_km`` (and in time)."""
        waves = self._waves(name, scale_km, period_hours)
        points = xyz.reshape(-1, 3)
        hours = np.broadcast_to(np.asarray(t, dtype=np.float64) - _PHASE_EPOCH_HOURS, xyz.shape[:-1]).reshape(-1)
        out = np.empty(points.shape[0])
        # blocks keep the (points x waves) buffer small and reused: fresh pages are slow here
        phase = np.empty((min(points.shape[0], _NOISE_BLOCK), waves.phases.size), dtype=np.float32)
        for lo in range(0, points.shape[0], _NOISE_BLOCK):
            block = slice(lo, lo + _NOISE_BLOCK)
            buffer = phase[: out[block].size]
            _wave_phases(points[block], hours[block], waves.vectors, waves.phases, waves.frequencies, period_hours is not None, buffer)
            # float32 cosine is ten times faster; phases stay below ~1e4 rad, so the error is < 1e-3 rad.
            # NumPy's own cosine: the fields' bytes depend on its rounding
            np.cos(buffer, out=buffer)
            _row_sums(buffer, out[block])
        return (out * waves.amplitude).reshape(xyz.shape[:-1])

    # ---- time-constant fields -------------------------------------------------------------

    def land_sea_mask(self, lat: FloatArray, lon: FloatArray, xyz: FloatArray | None = None) -> FloatArray:
        """Land fraction, 0 over open sea and 1 inland."""
        xyz = unit_vectors(lat, lon) if xyz is None else xyz
        land_signal = self.noise("land", xyz, 3000.0) + 0.5 * self.noise("coast", xyz, 700.0) - 0.55
        land_signal += np.where(np.abs(lat) > 80, -3.0, 0.0) + np.where(lat < -68, 4.0, 0.0)
        lsm = 1.0 / (1.0 + np.exp(-6.0 * land_signal))
        return np.where(lsm < 0.02, 0.0, np.where(lsm > 0.98, 1.0, lsm))

    def constants(self, lat: FloatArray, lon: FloatArray, version: int) -> dict[str, FloatArray]:
        """The climate constants (``version`` 15 or 20) at the given points."""
        if version not in (15, 20):
            raise ValueError(f"climate version must be 15 or 20, got {version}")
        xyz = unit_vectors(lat, lon)
        abs_lat = np.abs(lat)
        lsm = self.land_sea_mask(lat, lon, xyz)
        mountains = np.clip(self.noise("mountains", xyz, 1200.0), 0, None) ** 1.5
        height = lsm * (150.0 + 1800.0 * mountains + 800.0 * np.clip(self.noise("plateau", xyz, 2500.0), 0, None))
        sdor = lsm * (15.0 + 0.18 * height)
        forest = np.cos(np.radians(lat)) ** 2 * 0.9 + 0.35 * self.noise("forest", xyz, 900.0) - 0.25
        cvh = lsm * np.clip(forest, 0.0, 1.0)
        cvl = lsm * np.clip(0.55 + 0.3 * self.noise("grass", xyz, 800.0) - 0.6 * cvh, 0.0, 1.0)
        lake = lsm * np.clip(4.0 * (self.noise("lakes", xyz, 400.0) - 1.2), 0.0, 1.0)
        if version == 20:
            cvh = lsm * np.clip(cvh + 0.12 * self.noise("v20-forest", xyz, 600.0), 0.0, 1.0)
            cvl = lsm * np.clip(cvl + 0.10 * self.noise("v20-grass", xyz, 600.0), 0.0, 1.0 - cvh)
            lake = lsm * np.clip(lake + np.clip(3.0 * (self.noise("v20-lakes", xyz, 300.0) - 1.3), 0, 1), 0.0, 1.0)
        glacier = ((lsm > 0.5) & ((lat < -68) | (abs_lat > 72) | (height > 3200))).astype(np.float64)
        categorical = lambda name, top: lsm.round() * np.round((self.noise(name, xyz, 1500.0) + 2.0) / 4.0 * top).clip(1, top)  # noqa: E731
        lsrh = np.where(lsm > 0, np.log(1e-4 + 0.05 * cvh + 0.005 * cvl + 1e-3 * sdor / 100.0), -9.0)
        return {
            "slt": categorical("soil", 7),
            "sdfor": 0.55 * sdor,
            "sdor": sdor,
            "lsrh": lsrh,
            "cvl": cvl,
            "sr": lsm * (0.01 + 2.0 * cvh + 0.002 * sdor),
            "lsm": lsm,
            "isor": np.clip(0.5 + 0.35 * self.noise("isor", xyz, 500.0), 0, 1) * lsm,
            "tvl": categorical("tvl", 20),
            "tvh": categorical("tvh", 19),
            "cvh": cvh,
            "si10": glacier,
            "anor": 1.5 * np.tanh(self.noise("anor", xyz, 500.0)) * lsm,
            "cl": lake,
            "dl": lake * (10.0 + 40.0 * np.clip(self.noise("depth", xyz, 300.0) + 1.0, 0, None)),
            "z": GRAVITY * (height + 40.0 * self.noise("sea-level", xyz, 5000.0) * (1 - lsm)),
            "slor": lsm * np.clip(sdor / 4000.0, 0.0, 0.3),
        }

    @staticmethod
    def lake_cover(cl_v20: FloatArray, lat: FloatArray, month: int) -> FloatArray:
        """Lake cover of calendar ``month`` (1-12): the V20 lakes, shrinking in the dry season."""
        return cl_v20 * (0.85 + 0.15 * np.cos(2 * np.pi * (month - 2) / 12.0) * np.sign(lat + 1e-9))

    def saline_lakes(self, cl_v20: FloatArray, lat: FloatArray, lon: FloatArray) -> FloatArray:
        """Fraction of saline lake."""
        return cl_v20 * (self.noise("saline", unit_vectors(lat, lon), 1500.0) > 0.6)

    # ---- time-variable fields -------------------------------------------------------------

    @staticmethod
    def cos_solar_zenith(lat: FloatArray, lon: FloatArray, t: FloatArray | float) -> FloatArray:
        """Cosine of the solar zenith angle at hours ``t`` since 1970 (UTC)."""
        t = np.asarray(t, dtype=np.float64)
        day_of_year = (t / 24.0) % 365.25
        declination = np.radians(23.44) * np.sin(2 * np.pi * (day_of_year - 81.0) / 365.25)
        local_hour = (t % 24.0) + lon / 15.0
        phi = np.radians(lat)
        return np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.cos(np.radians(15.0 * (local_hour - 12.0)))

    def weather(
        self, lat: FloatArray, lon: FloatArray, t: FloatArray | float, constants: dict[str, FloatArray] | None = None
    ) -> dict[str, FloatArray]:
        """ERA's time-variable fields at the points and hours ``t`` (computed with V15 constants)."""
        c = self.constants(lat, lon, 15) if constants is None else constants
        xyz = unit_vectors(lat, lon)
        t = np.asarray(t, dtype=np.float64)
        phi = np.radians(lat)
        day_of_year = (t / 24.0) % 365.25
        sw = np.clip(self.cos_solar_zenith(lat, lon, t), 0.0, 1.0)
        night = (sw <= 0).astype(np.float64)
        height = c["z"] / GRAVITY
        synoptic = self.noise("synoptic", xyz, 1500.0, t, 120.0)
        climate_t = 300.0 - 42.0 * np.sin(phi) ** 2 - 14.0 * np.sin(phi) * np.cos(2 * np.pi * (day_of_year - 15.0) / 365.25)
        t2m = climate_t - 0.0065 * height + 6.0 * sw * (1 - 0.3 * c["cvh"]) * c["lsm"] - 2.5 * night * c["lsm"] + 3.5 * synoptic
        dryness = np.clip(0.5 + 0.5 * self.noise("dryness", xyz, 1200.0, t, 240.0), 0.0, 1.0) * (1 - 0.5 * (c["cvh"] + c["cvl"]))
        d2m = t2m - (1.5 + 16.0 * dryness * c["lsm"] + 1.5 * (1 - c["lsm"]))
        sd = np.clip((268.0 - t2m) / 25.0, 0.0, None) * 0.4 * c["lsm"]
        snow_cover = sd / (sd + 0.03)
        bright_soil = 0.25 * (1 - c["cvh"] - c["cvl"]).clip(0) * (c["slt"] / 7.0)
        albedo = (0.07 + 0.06 * c["lsm"] + bright_soil) * (1 - snow_cover) + 0.65 * snow_cover
        fal = np.clip(albedo, 0.03, 0.9)
        heating = 8.0 * sw * (1 - 0.5 * c["cvh"]) * (1 - fal) * c["lsm"]
        skt = t2m + heating - 1.5 * night * c["lsm"] + 0.6 * self.noise("skin", xyz, 600.0, t, 48.0)
        ice = np.minimum(t2m, 273.16)
        pressure_anomaly = self.noise("pressure", xyz, 2500.0, t, 150.0)
        return {
            "sp": 101325.0 * np.exp(-height / 8400.0) + 900.0 * pressure_anomaly,
            "msl": 101325.0 + 1200.0 * pressure_anomaly,
            "u10": 7.0 * self.noise("u10", xyz, 1200.0, t, 72.0),
            "v10": 5.0 * self.noise("v10", xyz, 1200.0, t, 72.0),
            "t2m": t2m,
            "d2m": d2m,
            "skt": skt,
            "aluvp": np.clip(0.9 * fal, 0, 1),
            "aluvd": np.clip(0.95 * fal, 0, 1),
            "alnip": np.clip(1.3 * fal, 0, 1),
            "alnid": np.clip(1.35 * fal, 0, 1),
            "istl1": ice - 0.5,
            "istl2": ice - 2.0,
            "sd": sd,
            "fal": fal,
        }

    # ---- MODIS ----------------------------------------------------------------------------

    def overpass(self, lat: FloatArray, lon: FloatArray, day_start: float) -> tuple[FloatArray, FloatArray]:
        """Aqua's daytime overpass: (UTC hours since 1970, local solar view hour), NaN outside swaths.

        Orbits are spaced 98.8 minutes apart, so each UTC hour sees a longitude strip;
        the swath is about 21 degrees of longitude wide at the equator, which leaves
        gaps between neighbouring orbits near the equator, as in the real product.
        """
        first_orbit = (day_start / 24.0 * 0.37) % _ORBIT_HOURS
        track_utc = 13.5 - lon / 15.0  # UTC at which local time is 13:30 at this longitude
        orbit = np.round((track_utc - first_orbit) / _ORBIT_HOURS)
        utc_at_node = first_orbit + orbit * _ORBIT_HOURS
        track_lon = 15.0 * (MODIS_OVERPASS_LOCAL_HOUR - utc_at_node)
        offset = (lon - track_lon + 180.0) % 360.0 - 180.0
        half_width = _SWATH_HALF_WIDTH_DEG / np.maximum(np.cos(np.radians(lat)), 0.15)
        utc = utc_at_node + 0.35 * lat / 90.0
        view_hour = (utc + lon / 15.0) % 24.0
        inside = np.abs(offset) <= half_width
        return np.where(inside, day_start + utc, np.nan), np.where(inside, view_hour, np.nan)

    def cloudy(self, lat: FloatArray, lon: FloatArray, t: FloatArray) -> BoolArray:
        """True where clouds hide the surface (about 40% of the time)."""
        xyz = unit_vectors(lat, lon)
        return self.noise("clouds", xyz, 700.0, np.nan_to_num(t), 36.0) > 0.25

    def subgrid_height(self, lat: FloatArray, lon: FloatArray, sdor: FloatArray) -> FloatArray:
        """Orography below ERA's resolution, metres."""
        return sdor * self.noise("subgrid", unit_vectors(lat, lon), 25.0)

    @staticmethod
    def valley_depth(sdor: FloatArray, isor: FloatArray) -> FloatArray:
        """How far below ERA's grid-box mean height (m) lie the valleys that stay clear when cumulus caps the ridges.

        A share of the sub-grid relief ``sdor``, the larger where the terrain is organised in
        ridges and valleys (``isor`` near 0) rather than in isolated hills (``isor`` near 1).
        """
        return sdor * (0.4 + 0.8 * (1.0 - isor))

    def time_invariant(self, lat: FloatArray, lon: FloatArray) -> TimeInvariant:
        """What :meth:`lst` reads that does not change in time, at the given points."""
        v15 = self.constants(lat, lon, 15)
        v20 = self.constants(lat, lon, 20)
        return TimeInvariant(
            {name: v15[name] for name in TRUTH_CONSTANTS[15]},
            {name: v20[name] for name in TRUTH_CONSTANTS[20]},
            self.valley_depth(v15["sdor"], v15["isor"]),
        )

    def lst(
        self,
        lat: FloatArray,
        lon: FloatArray,
        t: FloatArray,
        month: int,
        rng: np.random.Generator | None,
        fixed: TimeInvariant | None = None,
    ) -> FloatArray:
        """MODIS LST truth (K) at pixels observed at hours ``t``; see the module docstring.

        ``rng`` draws the sensor noise; ``None`` gives the truth without it (an oracle's target).
        ``fixed`` is :meth:`time_invariant` at these pixels, if already at hand (a month of days on one grid).
        """
        fixed = self.time_invariant(lat, lon) if fixed is None else fixed
        v15, v20 = fixed.v15, fixed.v20
        era = self.weather(lat, lon, t, v15)
        heating = era["skt"] - era["t2m"]
        clake = self.lake_cover(v20["cl"], lat, month)
        bare = (1 - v20["cvh"] - v20["cvl"]).clip(0)
        dew_point_depression = era["t2m"] - era["d2m"]
        # moist afternoons cap the ridges with cumulus, so MODIS's clear pixels lie in the valleys
        clear_sky_height = -fixed.valley_depth * (0.5 + 0.5 * np.tanh((10.0 - dew_point_depression) / 4.0))
        snow_cover = era["sd"] / (era["sd"] + 0.03)
        lapse_rate = 0.006 * (1.0 - 2.0 * snow_cover)  # K/m; snow-covered valleys hold cold-air pools
        delta = (
            2.1
            + 0.6 * heating * (1 - 0.6 * v20["cvh"])
            + 3.0 * np.tanh((dew_point_depression - 6.0) / 5.0)
            + 4.0 * bare * (1 - era["fal"] / 0.35).clip(0)
            - 4.0 * clake * heating.clip(0) / 6.0
            - 2.0 * v20["si10"]
            - lapse_rate * clear_sky_height
        )
        surface = era["skt"] + delta
        surface = np.where(v20["si10"] > 0.5, np.minimum(surface, MELTING_POINT_K), surface)
        return surface if rng is None else surface + rng.normal(0.0, SENSOR_NOISE_K, size=np.shape(lat))
