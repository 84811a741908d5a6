"""Exact great-circle nearest grid point: a direct row index, FAISS and a BallTree reference.

The ``grid`` engine works on any :class:`~ml4l.grids.Grid` (rows of equally spaced
longitudes from 0). For a query at latitude ``phi`` it visits rows outwards from
the two rows bracketing ``phi``; on each row the nearest point is the one nearest
in longitude, found by rounding. The haversine term of a row can never be less
than ``sin^2((phi - phi_row) / 2)``, so the walk stops as soon as that bound
exceeds the best found: the answer is exact everywhere, across the poles and the
0/360 seam included, usually after two rows.

The ``faiss`` engine takes any point cloud: it searches 3-D unit vectors, whose
L2 distance ranks like great-circle distance, for the ``k`` nearest in float32 and
re-ranks them in float64, which removes float32 near-ties.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numba
import numpy as np

from ml4l.geo import EARTH_RADIUS_KM, haversine_km, unit_vectors
from ml4l.grids import Grid
from ml4l.types import FloatArray, IntArray

Engine = Literal["auto", "grid", "faiss", "balltree"]
ENGINES: tuple[str, ...] = ("auto", "grid", "faiss", "balltree")
FAISS_CANDIDATES = 16
_LOOKUP_BINS_PER_ROW = 4


@dataclass(frozen=True, eq=False)
class PointCloud:
    """Unstructured points (any order, any density), searched with FAISS or the BallTree."""

    name: str
    lat: FloatArray
    lon: FloatArray

    @property
    def size(self) -> int:
        """Number of points."""
        return int(self.lat.size)


Target = Grid | PointCloud


def nearest(target: Target, lat: FloatArray, lon: FloatArray, engine: Engine = "auto") -> tuple[IntArray, FloatArray]:
    """The exact great-circle nearest point of ``target`` to each query, and its distance.

    Parameters
    ----------
    target
        A structured :class:`~ml4l.grids.Grid` or a :class:`PointCloud`.
    lat, lon
        Query coordinates in degrees; longitudes in any convention (-180..180, 0..360, ...).
    engine
        ``grid`` (structured grids only; CuPy on a GPU), ``faiss`` (faiss-gpu on a GPU),
        ``balltree`` (scikit-learn, the reference) or ``auto``: ``grid`` for a Grid, else ``faiss``.

    Returns
    -------
    cell : ndarray of int64
        Index of the nearest point in ``target``'s order; -1 where the query is NaN.
    distance_km : ndarray of float64
        Haversine distance to it in km; NaN where the query is NaN.
    """
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    if lat.shape != lon.shape:
        raise ValueError(f"lat and lon differ in size: {lat.size} and {lon.size}")
    if engine == "auto":
        engine = "grid" if isinstance(target, Grid) and target.is_global else "faiss"
    if engine == "grid" and isinstance(target, Grid) and not target.is_global:
        raise ValueError(f"the grid engine walks global grids only; {target.name} is a sub-area: use faiss or balltree")
    if engine == "grid":
        if not isinstance(target, Grid):
            raise ValueError("the grid engine needs a structured Grid; use faiss or balltree for a PointCloud")
        return _grid_engine(target, lat, lon)
    if engine not in ("faiss", "balltree"):
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    valid = ~(np.isnan(lat) | np.isnan(lon))
    cell = np.full(lat.size, -1, dtype=np.int64)
    cell[valid] = (_faiss_engine if engine == "faiss" else _balltree_engine)(target, lat[valid], lon[valid])
    distance = np.full(lat.size, np.nan)
    distance[valid] = haversine_km(lat[valid], lon[valid], target.lat[cell[valid]], target.lon[cell[valid]])
    return cell, distance


# ---- grid: a direct index over latitude rows ----


@dataclass(frozen=True)
class _RowIndex:
    row_lat: FloatArray  # degrees
    row_phi: FloatArray  # radians
    z: FloatArray  # sin(phi_row): height of the row's circle on the unit sphere
    rho: FloatArray  # cos(phi_row): its radius
    points: FloatArray  # points per row, as float
    half_step: FloatArray  # pi / points
    pl: IntArray
    offsets: IntArray
    lookup: IntArray  # first row at or south of each latitude bin's northern edge
    bins_per_degree: float

    def arrays(self) -> tuple[FloatArray | IntArray | float, ...]:
        return (
            self.row_lat, self.row_phi, self.z, self.rho, self.points, self.half_step,
            self.pl, self.offsets, self.lookup, self.bins_per_degree,
        )  # fmt: skip


@lru_cache(maxsize=8)
def _row_index(g: Grid) -> _RowIndex:
    nrows = g.row_lat.size
    bins = _LOOKUP_BINS_PER_ROW * nrows
    edges = 90.0 - np.arange(bins) * (180.0 / bins)
    lookup = np.searchsorted(-g.row_lat, -edges, side="left").astype(np.int64)
    phi = np.radians(np.asarray(g.row_lat, dtype=np.float64))
    points = g.pl.astype(np.float64)
    return _RowIndex(
        row_lat=np.ascontiguousarray(g.row_lat, dtype=np.float64),
        row_phi=phi,
        z=np.sin(phi),
        rho=np.cos(phi),
        points=points,
        half_step=np.pi / points,
        pl=np.ascontiguousarray(g.pl, dtype=np.int64),
        offsets=g.row_offsets[:-1].astype(np.int64),
        lookup=lookup,
        bins_per_degree=bins / 180.0,
    )


# Library sin/cos/asin cost more than the rest of the search; the angles met are
# almost always small, where these series are exact to float64 rounding.
_SMALL = np.pi / 32


@numba.njit(inline="always")
def _sin(x: float) -> float:
    if abs(x) > _SMALL:
        return np.sin(x)
    x2 = x * x
    return x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0))))


@numba.njit(inline="always")
def _cos(x: float) -> float:
    if abs(x) > _SMALL:
        return np.cos(x)
    x2 = x * x
    return 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0 * (1.0 - x2 / 90.0))))


@numba.njit(inline="always")
def _asin(x: float) -> float:
    if x > 0.05:
        return np.arcsin(x)
    x2 = x * x
    return x * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0 + x2 * (5.0 / 112.0 + x2 * (35.0 / 1152.0 + x2 * 63.0 / 2816.0)))))


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _nearest_on_rows(
    lat: FloatArray,
    lon: FloatArray,
    row_lat: FloatArray,
    row_phi: FloatArray,
    z_row: FloatArray,
    rho_row: FloatArray,
    points: FloatArray,
    half_step: FloatArray,
    pl: IntArray,
    offsets: IntArray,
    lookup: IntArray,
    bins_per_degree: float,
    cell: IntArray,
    distance_km: FloatArray,
) -> None:
    # Squared chord on the unit sphere to a point of row r at longitude gap dl:
    #   (z - z_r)^2 + (rho - rho_r)^2 + 4 rho rho_r sin^2(dl / 2),
    # whose first two terms bound the whole row from below.
    nrows = row_lat.size
    last_bin = lookup.size - 1
    for i in numba.prange(lat.size):
        phi_deg = lat[i]
        if np.isnan(phi_deg) or np.isnan(lon[i]):
            cell[i] = -1
            distance_km[i] = np.nan
            continue
        lam = lon[i] - 360.0 * np.floor(lon[i] * (1.0 / 360.0))
        b = min(max(int((90.0 - phi_deg) * bins_per_degree), 0), last_bin)
        south = lookup[b]
        while south < nrows and row_lat[south] > phi_deg:
            south += 1
        near = south if south < nrows else south - 1
        d = phi_deg * (np.pi / 180.0) - row_phi[near]
        sin_d, cos_d = _sin(d), _cos(d)
        z = z_row[near] * cos_d + rho_row[near] * sin_d
        rho = rho_row[near] * cos_d - z_row[near] * sin_d
        best_chord2, best_row, best_j = np.inf, -1, 0.0
        for direction in range(2):  # north from the row above, then south from the row at or below
            r = south - 1 if direction == 0 else south
            step = -1 if direction == 0 else 1
            while 0 <= r < nrows:
                dz, dr = z - z_row[r], rho - rho_row[r]
                bound = dz * dz + dr * dr
                if bound >= best_chord2:
                    break
                x = lam * points[r] * (1.0 / 360.0)
                j = np.floor(x + 0.5)
                g = _sin((x - j) * half_step[r])
                chord2 = bound + 4.0 * rho * rho_row[r] * g * g
                if chord2 < best_chord2:
                    best_chord2, best_row, best_j = chord2, r, j
                r += step
        index = int(best_j)
        if index >= pl[best_row]:
            index -= pl[best_row]
        cell[i] = offsets[best_row] + index
        distance_km[i] = 2.0 * EARTH_RADIUS_KM * _asin(min(0.5 * np.sqrt(best_chord2), 1.0))


def _grid_engine(g: Grid, lat: FloatArray, lon: FloatArray) -> tuple[IntArray, FloatArray]:
    if _gpu_available():
        return _grid_engine_cupy(g, lat, lon)
    cell = np.empty(lat.size, dtype=np.int64)
    distance = np.empty(lat.size, dtype=np.float64)
    _nearest_on_rows(lat, lon, *_row_index(g).arrays(), cell, distance)
    return cell, distance


# ---- grid on a GPU: the same walk as a CUDA kernel through CuPy ----

_CUDA_SOURCE = r"""
extern "C" __global__ void nearest_on_rows(
    const double* lat, const double* lon, const double* row_lat, const double* row_phi,
    const double* z_row, const double* rho_row, const double* points, const double* half_step,
    const long long* pl, const long long* offsets, const long long* lookup,
    const double bins_per_degree, const long long nrows, const long long nbins,
    const long long n, long long* cell, double* distance_km)
{
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= n) return;
    double phi_deg = lat[i];
    if (isnan(phi_deg) || isnan(lon[i])) { cell[i] = -1; distance_km[i] = nan(""); return; }
    double lam = lon[i] - 360.0 * floor(lon[i] / 360.0);
    long long b = (long long)((90.0 - phi_deg) * bins_per_degree);
    b = b < 0 ? 0 : (b > nbins - 1 ? nbins - 1 : b);
    long long south = lookup[b];
    while (south < nrows && row_lat[south] > phi_deg) south++;
    long long near = south < nrows ? south : south - 1;
    double d = phi_deg * M_PI / 180.0 - row_phi[near];
    double z = z_row[near] * cos(d) + rho_row[near] * sin(d);
    double rho = rho_row[near] * cos(d) - z_row[near] * sin(d);
    long long best_row = -1; double best_chord2 = INFINITY, best_j = 0.0;
    for (int direction = 0; direction < 2; direction++) {
        long long step = direction == 0 ? -1 : 1;
        for (long long r = direction == 0 ? south - 1 : south; r >= 0 && r < nrows; r += step) {
            double dz = z - z_row[r], dr = rho - rho_row[r];
            double bound = dz * dz + dr * dr;
            if (bound >= best_chord2) break;
            double x = lam * points[r] / 360.0;
            double j = floor(x + 0.5);
            double g = sin((x - j) * half_step[r]);
            double chord2 = bound + 4.0 * rho * rho_row[r] * g * g;
            if (chord2 < best_chord2) { best_chord2 = chord2; best_row = r; best_j = j; }
        }
    }
    long long index = (long long)best_j;
    if (index >= pl[best_row]) index -= pl[best_row];
    cell[i] = offsets[best_row] + index;
    distance_km[i] = 2.0 * EARTH_RADIUS_KM * asin(fmin(0.5 * sqrt(best_chord2), 1.0));
}
"""


@lru_cache(maxsize=1)
def _gpu_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    try:
        return bool(cupy.cuda.runtime.getDeviceCount() > 0)
    except cupy.cuda.runtime.CUDARuntimeError:
        return False


def _grid_engine_cupy(g: Grid, lat: FloatArray, lon: FloatArray) -> tuple[IntArray, FloatArray]:
    import cupy as cp

    source = f"#define EARTH_RADIUS_KM {EARTH_RADIUS_KM!r}\n" + _CUDA_SOURCE
    kernel = cp.RawKernel(source, "nearest_on_rows")
    idx = _row_index(g)
    tables = [cp.asarray(a) for a in idx.arrays()[:-1]]
    scalars = (np.float64(idx.bins_per_degree), np.int64(idx.row_lat.size), np.int64(idx.lookup.size), np.int64(lat.size))
    cell = cp.empty(lat.size, dtype=cp.int64)
    distance = cp.empty(lat.size, dtype=cp.float64)
    threads = 256
    blocks = max((lat.size + threads - 1) // threads, 1)
    kernel((blocks,), (threads,), (cp.asarray(lat), cp.asarray(lon), *tables, *scalars, cell, distance))
    return cp.asnumpy(cell), cp.asnumpy(distance)


# ---- faiss: any point cloud, exact after a float64 re-rank ----


@lru_cache(maxsize=4)
def _faiss_index(target: Target) -> Any:
    import faiss

    vectors = np.ascontiguousarray(unit_vectors(target.lat, target.lon), dtype=np.float32)
    index: Any = faiss.IndexFlatL2(3)  # a CPU index, or the GPU one made from it
    if _gpu_available() and hasattr(faiss, "StandardGpuResources"):
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(vectors)
    return index


def _faiss_engine(target: Target, lat: FloatArray, lon: FloatArray) -> IntArray:
    queries = unit_vectors(lat, lon)
    k = min(FAISS_CANDIDATES, target.size)
    _, candidates = _faiss_index(target).search(np.ascontiguousarray(queries, dtype=np.float32), k)
    exact = unit_vectors(target.lat[candidates], target.lon[candidates])  # (n, k, 3) float64
    chord2 = ((exact - queries[:, None, :]) ** 2).sum(axis=-1)
    return candidates[np.arange(lat.size), np.argmin(chord2, axis=1)].astype(np.int64)


# ---- balltree: the scikit-learn reference ----


@lru_cache(maxsize=4)
def _ball_tree(target: Target) -> Any:
    from sklearn.neighbors import BallTree

    return BallTree(np.radians(np.column_stack([target.lat, target.lon])), metric="haversine")


def _balltree_engine(target: Target, lat: FloatArray, lon: FloatArray) -> IntArray:
    _, index = _ball_tree(target).query(np.radians(np.column_stack([lat, lon])), k=1)
    return index[:, 0].astype(np.int64)
