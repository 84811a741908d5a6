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
        - 0.006 * subgrid_height                                 # lapse rate below ERA's resolution
    lst = min(surface, 273.15) where si10_v20 > 0.5 else surface  # melting ice stays at 0 °C
        + noise(0.9 K)                                           # sensor noise

``skt``, ``t2m``, ``d2m`` and ``fal`` are ERA's fields at the pixel's location and
time; ``subgrid_height`` is a short-wavelength orography scaled by ``sdor``. Over
the demo's land pixels ERA's skt is colder than this truth by about 3 K on
average, with a mean absolute error of 3.6 to 3.9 K, as reported for ERA5 against
MODIS Aqua day; everything above except the noise is a function of ERA fields,
so a model can learn it. The melting-ice cap makes the truth far from linear in
ERA's fields, as the real one is: on the demo, least squares on the features is
left with about half of skt's error, which a nonlinear model can reduce further.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
        # blocks keep the (points x waves) temporaries small and reused: fresh pages are slow here
        for lo in range(0, points.shape[0], _NOISE_BLOCK):
            block = slice(lo, lo + _NOISE_BLOCK)
            phase = waves.phases + np.multiply.outer(points[block, 0], waves.vectors[:, 0])
            phase += np.multiply.outer(points[block, 1], waves.vectors[:, 1])
            phase += np.multiply.outer(points[block, 2], waves.vectors[:, 2])
            if period_hours is not None:
                phase += np.multiply.outer(hours[block], waves.frequencies)
            # float32 cosine is ten times faster; phases stay below ~1e4 rad, so the error is < 1e-3 rad
            out[block] = np.cos(phase.astype(np.float32)).sum(axis=-1, dtype=np.float64)
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

    def lst(self, lat: FloatArray, lon: FloatArray, t: FloatArray, month: int, rng: np.random.Generator | None) -> FloatArray:
        """MODIS LST truth (K) at pixels observed at hours ``t``; see the module docstring.

        ``rng`` draws the sensor noise; ``None`` gives the truth without it (an oracle's target).
        """
        v15 = self.constants(lat, lon, 15)
        v20 = self.constants(lat, lon, 20)
        era = self.weather(lat, lon, t, v15)
        heating = era["skt"] - era["t2m"]
        clake = self.lake_cover(v20["cl"], lat, month)
        bare = (1 - v20["cvh"] - v20["cvl"]).clip(0)
        delta = (
            2.1
            + 0.6 * heating * (1 - 0.6 * v20["cvh"])
            + 3.0 * np.tanh((era["t2m"] - era["d2m"] - 6.0) / 5.0)
            + 4.0 * bare * (1 - era["fal"] / 0.35).clip(0)
            - 4.0 * clake * heating.clip(0) / 6.0
            - 2.0 * v20["si10"]
            - 0.006 * self.subgrid_height(lat, lon, v15["sdor"])
        )
        surface = era["skt"] + delta
        surface = np.where(v20["si10"] > 0.5, np.minimum(surface, MELTING_POINT_K), surface)
        return surface if rng is None else surface + rng.normal(0.0, SENSOR_NOISE_K, size=np.shape(lat))
