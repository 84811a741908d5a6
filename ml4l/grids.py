"""Grids in one canonical point order: reduced Gaussian (classic ``N``, octahedral ``O``),
regular Gaussian (``F``) and regular lat-lon (``LL``), global or a sub-area.

Points are numbered row by row from north to south, west to east within a row. A
global grid's rows start at longitude 0, exactly as ecCodes iterates a global field
in GRIB's default scanning mode; a sub-area's rows start at their own western point.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np

from ml4l.types import FloatArray, IntArray

_NEWTON_TOL = 1e-15


def gaussian_latitudes(n: int) -> FloatArray:
    """Latitudes (degrees, north to south) of the Gaussian grid with ``n`` rows per hemisphere.

    They are the arcsines of the roots of the Legendre polynomial of degree ``2n``,
    found by Newton iteration from the usual asymptotic first guess.
    """
    if n < 1:
        raise ValueError(f"Gaussian number must be >= 1, got {n}")
    degree = 2 * n
    k = np.arange(1, n + 1, dtype=np.float64)
    x = np.cos(np.pi * (k - 0.25) / (degree + 0.5))
    for _ in range(100):
        p_prev, p = np.ones_like(x), x.copy()
        for m in range(2, degree + 1):
            p_prev, p = p, ((2 * m - 1) * x * p - (m - 1) * p_prev) / m
        dp = degree * (x * p - p_prev) / (x * x - 1.0)
        step = p / dp
        x -= step
        if np.max(np.abs(step)) < _NEWTON_TOL:
            break
    north = np.degrees(np.arcsin(x))
    return np.concatenate([north, -north[::-1]])


def octahedral_pl(n: int) -> IntArray:
    """Points per row of the octahedral grid O``n``: 20, 24, ... 16 + 4n, mirrored."""
    north = 20 + 4 * np.arange(n, dtype=np.int64)
    return np.concatenate([north, north[::-1]])


@cache
def classic_pl(n: int) -> IntArray:
    """Points per row of ECMWF's classic reduced Gaussian grid N``n``, from ecCodes' own samples."""
    import eccodes

    try:
        handle = eccodes.codes_grib_new_from_samples(f"reduced_gg_pl_{n}_grib2")
    except Exception as exc:  # ecCodes raises its own error types per version
        raise ValueError(f"ecCodes ships no classic reduced Gaussian grid N{n}") from exc
    try:
        pl = eccodes.codes_get_array(handle, "pl").astype(np.int64)
    finally:
        eccodes.codes_release(handle)
    pl.setflags(write=False)
    return pl


@dataclass(frozen=True, eq=False)
class Grid:
    """A global grid made of latitude rows, each with equally spaced longitudes from 0.

    Attributes
    ----------
    name : str
        ``N320``, ``O1280``, ``LL0.25`` ...
    row_lat : ndarray
        Latitude of each row in degrees, north to south.
    pl : ndarray
        Number of points on each row.
    row_lon0, row_dlon : ndarray or None
        A sub-area's first longitude and longitude step on each row; ``None`` for a
        global grid, whose rows go round the globe from longitude 0 in ``pl`` steps.
    """

    name: str
    row_lat: FloatArray
    pl: IntArray
    row_lon0: FloatArray | None = None
    row_dlon: FloatArray | None = None
    _lat: FloatArray = field(init=False, repr=False)
    _lon: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.row_lat.shape != self.pl.shape:
            raise ValueError("row_lat and pl must have the same length")
        if (self.row_lon0 is None) != (self.row_dlon is None):
            raise ValueError("row_lon0 and row_dlon are given together or not at all")
        rows = np.repeat(np.arange(self.pl.size), self.pl)
        start = self.row_offsets[:-1]
        index_in_row = np.arange(rows.size) - start[rows]
        if self.row_lon0 is None or self.row_dlon is None:  # both or neither, checked above
            lon = 360.0 * index_in_row / self.pl[rows]
        else:
            lon = self.row_lon0[rows] + index_in_row * self.row_dlon[rows]
        lat = self.row_lat[rows]
        for arr in (lat, lon):
            arr.setflags(write=False)
        object.__setattr__(self, "_lat", lat)
        object.__setattr__(self, "_lon", lon)

    @property
    def is_global(self) -> bool:
        """Whether every row goes round the globe from longitude 0 (what the ERA store and the join need)."""
        return self.row_lon0 is None

    @property
    def size(self) -> int:
        """Number of grid points."""
        return int(self.pl.sum())

    @property
    def lat(self) -> FloatArray:
        """Latitude of every point, degrees, GRIB order."""
        return self._lat

    @property
    def lon(self) -> FloatArray:
        """Longitude of every point in [0, 360), degrees, GRIB order."""
        return self._lon

    @property
    def row_offsets(self) -> IntArray:
        """Index of the first point of each row, with the total size appended."""
        return np.concatenate([[0], np.cumsum(self.pl)])

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return (
            isinstance(other, Grid)
            and self.name == other.name
            and np.array_equal(self.pl, other.pl)
            and np.allclose(self.row_lat, other.row_lat, rtol=0, atol=1e-9)
            and self.is_global == other.is_global
            and (self.is_global or np.allclose(self.lon, other.lon, rtol=0, atol=1e-9))
        )

    def __hash__(self) -> int:
        return hash((self.name, self.size))


_NAME = re.compile(r"^(?:(?P<kind>[NOF])(?P<n>\d+)|LL(?P<res>\d+(?:\.\d+)?))$")


@lru_cache(maxsize=32)
def grid(name: str) -> Grid:
    """The global grid called ``name``: ``N<n>`` (classic reduced Gaussian, as ecCodes ships it),
    ``O<n>`` (octahedral), ``F<n>`` (regular Gaussian, ``4n`` points a row) or ``LL<degrees>``
    (regular lat-lon from 90 to -90 and from 0, GRIB style: ``LL0.25`` is the CDS's 721 x 1440).

    Examples
    --------
    >>> grid("N320").size
    542080
    >>> grid("O1280").size
    6599680
    >>> grid("LL0.25").size
    1038240
    """
    match = _NAME.match(name.strip().upper())
    if match is None:
        raise ValueError(f"unknown grid name {name!r}: expected N<n>, O<n>, F<n> or LL<degrees>")
    if match["res"] is not None:
        return regular_ll(float(match["res"]))
    n = int(match["n"])
    if n < 1:
        raise ValueError(f"unknown grid name {name!r}: the Gaussian number must be >= 1")
    lat = gaussian_latitudes(n)
    kind = match["kind"]
    row_points: dict[str, Callable[[int], IntArray]] = {"O": octahedral_pl, "N": classic_pl, "F": regular_gaussian_pl}
    pl = row_points[kind](n)
    return Grid(f"{kind}{n}", lat, pl)


def regular_gaussian_pl(n: int) -> IntArray:
    """Points per row of the regular Gaussian grid F``n``: ``4n`` on each of its ``2n`` rows."""
    return np.full(2 * n, 4 * n, dtype=np.int64)


def regular_ll(resolution: float) -> Grid:
    """Regular lat-lon grid with nodes on both poles and at longitude 0, GRIB style."""
    if not resolution > 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    rows = round(180.0 / resolution)
    cols = round(360.0 / resolution)
    if not np.isclose(rows * resolution, 180.0) or not np.isclose(cols * resolution, 360.0):
        raise ValueError(f"resolution {resolution} does not divide the globe: name the sub-area instead")
    lat = np.asarray(90.0 - resolution * np.arange(rows + 1), dtype=np.float64)
    return Grid(f"LL{resolution:g}", lat, np.full(rows + 1, cols, dtype=np.int64))
