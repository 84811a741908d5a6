"""Read the yearly LST NetCDF and the SRTM GeoTIFF, and refuse inputs that cannot be used.

Checks before any patch is built (each failure is an :class:`~ml4l.errors.InputError` naming the
file, and is quarantined as ``downscale_inputs/<year>`` by :func:`check_inputs`):

* the NetCDF has the seed's variable with dims (time, band, y, x) and 4 bands, the last being QA;
* its LST is in 0.02 K counts (``units`` and the values, 7500..65535), not K or degrees C;
* the DEM's pixel centres equal the LST grid's to 1e-9 degree (a 379 x 559 DEM is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.usecases.downscale.layout import DownscaleLake
from ml4l.usecases.downscale.sample import LST_SCALE_K, LST_UNITS, TRUTH_VARIABLE, VALID_COUNTS, VARIABLE

GRID_TOLERANCE_DEG = 1e-9
DIMS = ("time", "band", "y", "x")
N_BANDS = 4
QA_BAND = 3
QA_CODES = (0, 1, 2, 3)
SUITE = "downscale_inputs"


@dataclass
class Inputs:
    """An opened, checked pair of inputs: the LST file (read day by day) and the elevation on its grid."""

    lst_path: str
    dem_path: str
    days: npt.NDArray[np.int32]
    lat: npt.NDArray[np.float64]
    """Ascending (rows south to north), as in the NetCDF."""
    lon: npt.NDArray[np.float64]
    dem: npt.NDArray[np.float64]
    """Elevation (m), rows in the NetCDF's order."""
    grid_offset_deg: float
    """Largest distance between a DEM and an LST pixel centre, degrees."""
    _lst: Any

    def day(self, index: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """LST of day ``index`` in K, (3, y, x) night/day/mean with NaN where masked, and its QA (y, x), NaN if masked."""
        raw = np.asarray(self._lst[index], dtype=np.float64)
        return raw[:QA_BAND] * LST_SCALE_K, raw[QA_BAND]

    def close(self) -> None:
        self._lst.close()


def open_lst(path: str) -> Any:
    """The seed's LST variable, lazily; refuses the wrong variable, dims, band count or units."""
    import xarray as xr

    try:
        dataset = xr.open_dataset(path, engine="h5netcdf", mask_and_scale=True, decode_times=False)
    except Exception as exc:  # unreadable: h5py/xarray raise many types
        raise InputError(path, f"not a readable NetCDF file: {exc}") from exc
    if VARIABLE not in dataset:
        raise InputError(path, f"no variable {VARIABLE!r} (found {', '.join(map(str, dataset.data_vars)) or 'none'})")
    lst = dataset[VARIABLE]
    if lst.dims != DIMS:
        raise InputError(path, f"{VARIABLE} has dims {lst.dims}, expected {DIMS}")
    if lst.sizes["band"] != N_BANDS:
        raise InputError(
            path,
            f"{lst.sizes['band']} bands, expected {N_BANDS} (0 night, 1 day, 2 daily mean, 3 QA): the QA band is missing",
        )
    units = lst.attrs.get("units")
    if units != LST_UNITS:
        raise InputError(path, f"LST units are {units!r}, expected {LST_UNITS!r} (counts of 0.02 K)")
    first = np.asarray(lst[0, :QA_BAND], dtype=np.float64)
    finite = first[np.isfinite(first)]
    if finite.size and (finite.min() < VALID_COUNTS[0] or finite.max() > VALID_COUNTS[1]):
        raise InputError(
            path,
            f"LST values {finite.min():.6g}..{finite.max():.6g} on day {int(lst.time[0])} are outside "
            f"{VALID_COUNTS[0]}..{VALID_COUNTS[1]}: not in {LST_UNITS} units (K would be ~250..340)",
        )
    return lst


def read_dem(path: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Elevation (m) and its pixel-centre latitudes and longitudes, as stored (north-up GeoTIFFs start north)."""
    import rasterio

    try:
        with rasterio.open(path) as source:
            dem = source.read(1).astype(np.float64)
            transform = source.transform
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(path, f"not a readable GeoTIFF: {exc}") from exc
    if transform.b != 0 or transform.d != 0:
        raise InputError(path, "the DEM is rotated; only north-up or south-up lat/lon grids are supported")
    rows, cols = dem.shape
    lat = transform.f + transform.e * (np.arange(rows) + 0.5)
    lon = transform.c + transform.a * (np.arange(cols) + 0.5)
    return dem, lat, lon


def align_dem(
    dem_path: str,
    dem: npt.NDArray[np.float64],
    dem_lat: npt.NDArray[np.float64],
    dem_lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], float]:
    """The DEM in the LST's row order, and the largest centre offset; refuses a grid that does not align to 1e-9 degree."""
    if dem.shape != (lat.size, lon.size):
        raise InputError(
            dem_path,
            f"DEM has {dem.shape[0]} x {dem.shape[1]} pixels (rows x cols), the LST grid {lat.size} x {lon.size}: "
            "the grids do not align; resample the DEM onto the LST pixel centres",
        )
    if (dem_lat[-1] - dem_lat[0]) * (lat[-1] - lat[0]) < 0:
        dem, dem_lat = dem[::-1], dem_lat[::-1]
    offset = float(max(np.abs(dem_lat - lat).max(), np.abs(dem_lon - lon).max()))
    if offset > GRID_TOLERANCE_DEG:
        raise InputError(
            dem_path,
            f"DEM pixel centres are up to {offset:.3g} degrees from the LST grid's (tolerance {GRID_TOLERANCE_DEG:g})",
        )
    return dem, offset


def open_inputs(lst_path: str, dem_path: str) -> Inputs:
    """Open and check both local files (see the module docstring)."""
    lst = open_lst(lst_path)
    lat, lon = np.asarray(lst.y, dtype=np.float64), np.asarray(lst.x, dtype=np.float64)
    dem, dem_lat, dem_lon = read_dem(dem_path)
    aligned, offset = align_dem(dem_path, dem, dem_lat, dem_lon, lat, lon)
    days = np.asarray(lst.time, dtype=np.int32)
    return Inputs(lst_path, dem_path, days, lat, lon, np.ascontiguousarray(aligned), offset, lst)


def open_truth(path: str) -> Any:
    """The noise-free truth (K), (time, band, y, x) with bands night, day, mean; for the oracle only."""
    import xarray as xr

    return xr.open_dataset(path, engine="h5netcdf", decode_times=False)[TRUTH_VARIABLE]


def inputs_table(inputs: Inputs) -> pd.DataFrame:
    """One row per day for the Great Expectations suite ``downscale_inputs``, with the grid checks as columns."""
    rows = []
    for index, day in enumerate(inputs.days):
        lst, qa = inputs.day(index)
        counts = lst[np.isfinite(lst)] / LST_SCALE_K
        rows.append(
            {
                "day": int(day),
                "lst_min": float(counts.min()) if counts.size else np.nan,
                "lst_max": float(counts.max()) if counts.size else np.nan,
                "masked_fraction": float(np.isnan(lst[1]).mean()),
                "unknown_qa": int((~np.isin(qa, QA_CODES)).sum()),
            }
        )
    table = pd.DataFrame(rows)
    table["dem_min"], table["dem_max"] = float(inputs.dem.min()), float(inputs.dem.max())
    table["grid_offset_deg"] = inputs.grid_offset_deg
    return table


def check_inputs(lake: Lake, year: int) -> dict[str, Any]:
    """Open and check the year's inputs, then validate them with the GX suite; quarantine on any failure.

    Raises :class:`InputError` (or :class:`ml4l.quality.QuarantinedError`) naming the file and problem.
    """
    from ml4l import quality

    paths = DownscaleLake(lake)
    key = str(year)
    try:
        inputs = open_inputs(lake.local(paths.lst(year)), lake.local(paths.dem()))
    except InputError as exc:
        quality.quarantine(lake, SUITE, key, str(exc))
        raise
    try:
        table = inputs_table(inputs)
    finally:
        inputs.close()
    outcome = quality.validate(lake, SUITE, key, table)
    if not outcome.success:
        raise quality.QuarantinedError(paths.lst(year), outcome.summary())
    return {
        "year": year,
        "days": len(table),
        "grid": [int(inputs.lat.size), int(inputs.lon.size)],
        "grid_offset_deg": inputs.grid_offset_deg,
        "expectations": outcome.evaluated,
    }
