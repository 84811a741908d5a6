"""The grid of a GRIB message, and where each of its points lies in that grid's canonical order.

A message's points come in its scanning mode; :class:`Layout` holds the canonical
grid (rows north to south, west to east, see :mod:`ml4l.grids`) and, when the file's
order differs, the canonical index of each point in file order. Global regular
grids whose rows start elsewhere than longitude 0 are turned to start at 0.

Supported: ``regular_ll`` and ``regular_gg`` in every scanning mode but alternate-row
(boustrophedon), global or a sub-area; ``reduced_gg`` (N and O of any N) global or a
sub-area, in the default scanning mode (the only one ecCodes' own iterator honours
for reduced grids). Anything else is refused with a :class:`GribError`, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import eccodes
import numpy as np

from ml4l.grids import Grid, classic_pl, gaussian_latitudes, grid, octahedral_pl
from ml4l.readers.grib.errors import Where
from ml4l.types import FloatArray, IntArray

_ROW_MATCH_DEGREES = 1e-3  # ecCodes' tolerance when it looks up a sub-area's first Gaussian row
_FRACTION_DENOMINATOR = 10**9  # GRIB angles are whole milli- or micro-degrees


@dataclass(frozen=True, eq=False)
class Layout:
    """A message's grid and point order.

    Attributes
    ----------
    grid : Grid
        The canonical grid.
    grid_type : str
        ecCodes' ``gridType``.
    order : ndarray or None
        ``order[i]`` is the canonical index of the message's ``i``-th point; ``None``
        when the message is already in canonical order.
    """

    grid: Grid
    grid_type: str
    order: IntArray | None

    @property
    def latitudes(self) -> FloatArray:
        """Latitude of each point in the message's own order."""
        return self.grid.lat if self.order is None else self.grid.lat[self.order]

    @property
    def longitudes(self) -> FloatArray:
        """Longitude of each point in the message's own order."""
        return self.grid.lon if self.order is None else self.grid.lon[self.order]


def _get(handle: int, key: str) -> float | int | str | None:
    if not eccodes.codes_is_defined(handle, key) or eccodes.codes_is_missing(handle, key):
        return None
    return eccodes.codes_get(handle, key)


def _required(handle: int, key: str, where: Where) -> float:
    value = _get(handle, key)
    if value is None:
        raise where.error(key, "missing from the grid definition")
    return float(value)


def _tolerance(handle: int) -> float:
    subdivisions = _get(handle, "angleSubdivisions")  # 1000 in GRIB1 (millidegrees), 10**6 in GRIB2
    return 1.0 / float(subdivisions) if subdivisions else 1e-6


def layout_from_handle(handle: int, where: Where) -> Layout:
    """The :class:`Layout` of the message ``handle`` (an ecCodes handle)."""
    grid_type = str(eccodes.codes_get(handle, "gridType"))
    if grid_type in ("regular_ll", "regular_gg"):
        return _regular(handle, grid_type, where)
    if grid_type == "reduced_gg":
        return _reduced_gaussian(handle, where)
    raise where.error("gridType", f"{grid_type!r} is not supported (regular_ll, regular_gg and reduced_gg are)")


def _scanning(handle: int, where: Where) -> tuple[bool, bool, bool]:
    if _get(handle, "alternativeRowScanning"):
        raise where.error("alternativeRowScanning", "alternate-row (boustrophedon) scanning is not supported")
    return bool(_get(handle, "iScansNegatively")), bool(_get(handle, "jScansPositively")), bool(_get(handle, "jPointsAreConsecutive"))


def _regular(handle: int, grid_type: str, where: Where) -> Layout:
    ni, nj = int(_required(handle, "Ni", where)), int(_required(handle, "Nj", where))
    lat1, lat2 = _required(handle, "latitudeOfFirstGridPointInDegrees", where), _required(handle, "latitudeOfLastGridPointInDegrees", where)
    lon1, lon2 = (
        _required(handle, "longitudeOfFirstGridPointInDegrees", where),
        _required(handle, "longitudeOfLastGridPointInDegrees", where),
    )
    i_negative, j_positive, j_consecutive = _scanning(handle, where)
    tol = _tolerance(handle)
    if ni < 1 or nj < 1 or ni * nj != int(_required(handle, "numberOfDataPoints", where)):
        raise where.error("numberOfDataPoints", f"Ni x Nj = {ni} x {nj} does not match the number of points")

    di = _get(handle, "iDirectionIncrementInDegrees")
    if di is None or float(di) <= 0:  # increments not given: the span over the intervals, as ecCodes does
        span = (lon1 - lon2) if i_negative else (lon2 - lon1)
        di = (span % 360.0) / (ni - 1) if ni > 1 else 360.0
    di = float(di)
    west = lon1 - (ni - 1) * di if i_negative else lon1
    east = west + (ni - 1) * di
    if abs(((lon2 if not i_negative else lon1) - east + 180.0) % 360.0 - 180.0) > tol * ni:
        raise where.error("iDirectionIncrement", f"{ni} points {di:g} degrees apart from {lon1:g} do not end at {lon2:g}")

    if grid_type == "regular_gg":
        n = int(_required(handle, "N", where))
        all_lats = gaussian_latitudes(n)
        first_row = _gaussian_row(all_lats, max(lat1, lat2), where)
        if first_row + nj > all_lats.size:
            raise where.error("Nj", f"{nj} rows from latitude {max(lat1, lat2):g} run past the {all_lats.size} rows of Gaussian N{n}")
        row_lat = all_lats[first_row : first_row + nj]
        if abs(row_lat[-1] - min(lat1, lat2)) > _ROW_MATCH_DEGREES:
            raise where.error("latitudeOfLastGridPoint", f"{min(lat1, lat2):g} is not Gaussian row {first_row + nj} of N{n}")
        dj = None
    else:
        dj_value = _get(handle, "jDirectionIncrementInDegrees")
        dj = float(dj_value) if dj_value is not None and float(dj_value) > 0 else (abs(lat1 - lat2) / (nj - 1) if nj > 1 else 180.0)
        step = dj if j_positive else -dj
        if abs(lat1 + (nj - 1) * step - lat2) > tol * nj:
            raise where.error("jDirectionIncrement", f"{nj} rows {dj:g} degrees apart from {lat1:g} do not end at {lat2:g}")
        # canonical row k (north to south) holds file row nj-1-k when the file scans south to north
        rows = np.arange(nj)
        row_lat = np.asarray(lat1 + (nj - 1 - rows) * dj if j_positive else lat1 - rows * dj, dtype=np.float64)

    lon_global = abs(ni * di - 360.0) <= tol * ni
    shift = 0
    if lon_global:
        turns = (west % 360.0) / di
        shift = round(turns)
        lon_global = abs(turns - shift) * di <= tol
    pl = np.full(nj, ni, dtype=np.int64)
    lon0, dlon = (None, None) if lon_global else (np.full(nj, west), np.full(nj, di))
    name = _regular_name(grid_type, handle, lon_global, nj, di, dj, (float(row_lat[0]), west, float(row_lat[-1]), east))
    own = Grid(name, row_lat, pl, lon0, dlon)
    named = _named(name)
    canonical = named if named is not None and named == own else own

    file_row, file_col = np.divmod(np.arange(ni * nj), nj)[::-1] if j_consecutive else np.divmod(np.arange(ni * nj), ni)
    row = nj - 1 - file_row if j_positive else file_row
    col = ni - 1 - file_col if i_negative else file_col
    if lon_global:
        col = (col + shift) % ni
    order = row * ni + col
    identity = bool(np.array_equal(order, np.arange(order.size)))
    return Layout(canonical, grid_type, None if identity else order)


def _regular_name(
    grid_type: str, handle: int, lon_global: bool, rows: int, di: float, dj: float | None, area: tuple[float, float, float, float]
) -> str:
    if grid_type == "regular_gg":
        n = int(eccodes.codes_get(handle, "N"))
        base = f"F{n}"
        whole = lon_global and rows == 2 * n and abs(di * 4 * n - 360.0) < 1e-9
    else:
        base = f"LL{di:g}" if dj is not None and abs(di - dj) < 1e-9 else f"LL{di:g}x{dj:g}"
        whole = lon_global and abs(area[0] - 90.0) < 1e-9 and abs(area[2] + 90.0) < 1e-9
    north, west, south, east = area
    return base if whole else f"{base} area {north:g}/{west:g}/{south:g}/{east:g}"


def _named(name: str) -> Grid | None:
    if " " in name:
        return None
    try:
        return grid(name)
    except ValueError:
        return None


def _gaussian_row(lats: FloatArray, lat: float, where: Where) -> int:
    row = int(np.argmin(np.abs(lats - lat)))
    if abs(lats[row] - lat) >= _ROW_MATCH_DEGREES:
        raise where.error("latitudeOfFirstGridPoint", f"{lat:g} is not a row of the Gaussian grid N{lats.size // 2}")
    return row


def _reduced_gaussian(handle: int, where: Where) -> Layout:
    n = int(_required(handle, "N", where))
    pl = eccodes.codes_get_array(handle, "pl").astype(np.int64)
    points = int(_required(handle, "numberOfDataPoints", where))
    i_negative, j_positive, _ = _scanning(handle, where)
    if i_negative or j_positive:
        raise where.error("scanningMode", "a reduced Gaussian grid must scan west to east and north to south")
    lat1 = _required(handle, "latitudeOfFirstGridPointInDegrees", where)
    lon1 = _required(handle, "longitudeOfFirstGridPointInDegrees", where) % 360.0
    lat2 = _required(handle, "latitudeOfLastGridPointInDegrees", where)
    lon2 = _required(handle, "longitudeOfLastGridPointInDegrees", where) % 360.0
    lats = gaussian_latitudes(n)
    first = _gaussian_row(lats, lat1, where)
    if first + pl.size > lats.size:
        raise where.error("pl", f"{pl.size} rows from latitude {lat1:g} run past the {lats.size} rows of N{n}")
    octahedral = np.array_equal(pl, octahedral_pl(n)[first : first + pl.size])
    kind = "O" if octahedral else "N"
    delta = 360.0 / float(pl.max())
    is_global = pl.size == lats.size and lon1 == 0.0 and abs(lon2 - (360.0 - delta)) <= delta and int(pl.sum()) == points
    if is_global:
        named = grid(f"O{n}") if octahedral else _classic(n, pl)
        return Layout(named or Grid(f"N{n}", lats, pl), "reduced_gg", None)

    west = Fraction(lon1).limit_denominator(_FRACTION_DENOMINATOR)
    east = Fraction(lon2).limit_denominator(_FRACTION_DENOMINATOR)
    while east < west:
        east += 360
    counts = np.empty(pl.size, dtype=np.int64)
    lon0 = np.empty(pl.size)
    for j, points_on_row in enumerate(pl.tolist()):
        # the row's points at 360 i / pl that lie within [west, east], in exact arithmetic as ecCodes does
        i_west = math.ceil(west * points_on_row / 360)
        i_east = math.floor(east * points_on_row / 360)
        counts[j] = min(points_on_row, max(0, i_east - i_west + 1))
        lon0[j] = i_west * 360 / points_on_row
    if int(counts.sum()) != points:
        raise where.error(
            "numberOfDataPoints",
            f"the sub-area {lat1:g}/{lon1:g}/{lat2:g}/{lon2:g} of {kind}{n} holds {int(counts.sum())} points, the message {points}",
        )
    name = f"{kind}{n} area {lat1:g}/{lon1:g}/{lat2:g}/{lon2:g}"
    return Layout(Grid(name, lats[first : first + pl.size], counts, lon0, 360.0 / pl.astype(np.float64)), "reduced_gg", None)


def _classic(n: int, pl: IntArray) -> Grid | None:
    try:
        shipped = classic_pl(n)
    except ValueError:
        return None
    return grid(f"N{n}") if np.array_equal(shipped, pl) else None
