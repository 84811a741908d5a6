"""read_modis against the real MODIS products in ../shared/realdata/modis, read in place.

References, computed here from the raw layers: pyhdf for the HDF4 tile (and pyproj for
its coordinates), rasterio for the AppEEARS GeoTIFF, xarray with cftime for the AppEEARS
NetCDF. The default QC filter keeps pixels produced (mandatory QA 0 or 1) with an LST
error class of at most 3 K (bits 6-7 below 3).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml4l import read_modis

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODIS = SHARED / "realdata" / "modis"
HDF = MODIS / "MOD11A1.A2021227.h11v05.061.2021228105320.hdf"
TIF = MODIS / "MYD11A1.061_LST_Day_1km_doy2024228_aid0001.tif"
TIF_QC = MODIS / "MYD11A1.061_QC_Day_doy2024228_aid0001.tif"
NC = MODIS / "MYD11A1.061_1km_aid0001.nc"

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the real inputs live in {SHARED}, absent here")

# Means of up to 10^6 float32 values accumulated in float64 against a float64 reference:
# the difference is a few float32 ulps of ~300 K (3e-5 K), whatever the CPU.
MEAN_ATOL_K = 1e-4


def passes_qc(qc: np.ndarray) -> np.ndarray:
    return ((qc & 0b11) <= 1) & (((qc >> 6) & 0b11) <= 2)


def sinusoidal_to_lon_lat(x: np.ndarray, y: np.ndarray, tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """pyproj's inverse of the MODIS sinusoidal projection, in a process of its own.

    The eccodes 2.50 wheel (imported with ml4l) and pyproj's wheel crash the process when
    pyproj is loaded after eccodes, so pyproj never shares one with ml4l.
    """
    np.save(tmp_path / "xy.npy", np.stack([x, y]))
    code = (
        "import sys, numpy as np; from pyproj import Transformer\n"
        "x, y = np.load(sys.argv[1])\n"
        "sphere = '+R=6371007.181 +units=m'\n"
        "t = Transformer.from_crs('+proj=sinu ' + sphere, '+proj=longlat ' + sphere, always_xy=True)\n"
        "np.save(sys.argv[2], np.stack(t.transform(x, y)))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "xy.npy"), str(tmp_path / "lonlat.npy")], check=True)
    lon, lat = np.load(tmp_path / "lonlat.npy")
    return lon, lat


def test_hdf4_tile_against_pyhdf_and_pyproj(tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    hdf = SD(str(HDF), SDC.READ)
    lst_raw, qc, view_raw = (hdf.select(n).get() for n in ("LST_Day_1km", "QC_Day", "Day_view_time"))
    struct, core = hdf.attributes()["StructMetadata.0"], hdf.attributes()["CoreMetadata.0"]
    archive = hdf.attributes()["ArchiveMetadata.0"]
    hdf.end()
    kept = (lst_raw != 0) & passes_qc(qc) & (view_raw != 255)
    (day,) = read_modis(str(HDF))

    assert day.sizes["pixel"] == int(kept.sum()) > 10_000
    assert float(day["lst"].mean(dtype=np.float64)) == pytest.approx(
        float((lst_raw[kept] * 0.02).mean()), abs=MEAN_ATOL_K
    )
    assert day["lst"].dtype == np.float32
    begins = re.search(r"RANGEBEGINNINGDATE.*?VALUE\s*=\s*\"([\d-]+)\"", core, re.S)[1]  # type: ignore[index]
    assert (day.attrs["date"], day.attrs["date_source"]) == (begins, "content") == ("2021-08-15", "content")
    assert (day.attrs["platform"], day.attrs["product"]) == ("Terra", "MOD11A1")

    # each pixel's centre, projected back from the sinusoidal grid by pyproj
    upper_left = [float(v) for v in re.search(r"UpperLeftPointMtrs=\(([^)]*)\)", struct)[1].split(",")]  # type: ignore[index]
    lower_right = [float(v) for v in re.search(r"LowerRightMtrs=\(([^)]*)\)", struct)[1].split(",")]  # type: ignore[index]
    rows, cols = np.nonzero(kept)
    size = (lower_right[0] - upper_left[0]) / 1200
    assert size == pytest.approx(926.625433, abs=1e-6)
    x, y = upper_left[0] + (cols + 0.5) * size, upper_left[1] - (rows + 0.5) * size
    lon, lat = sinusoidal_to_lon_lat(x, y, tmp_path)
    # both are a few float64 operations on metres of order 1e7: agreement to 1e-9 degrees (0.1 mm) is rounding
    np.testing.assert_allclose(day["latitude"], lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(day["longitude"], lon, rtol=0, atol=1e-9)

    # footprint: NASA's bounding coordinates of the granule, and every pixel inside them
    bounds = [
        float(re.search(rf"{side}BOUNDINGCOORDINATE.*?VALUE\s*=\s*([-\d.]+)", archive, re.S)[1])  # type: ignore[index]
        for side in ("SOUTH", "NORTH", "WEST", "EAST")
    ]
    assert day.attrs["footprint"] == tuple(bounds)
    south, north, west, east = bounds
    assert south - 1e-9 <= float(day["latitude"].min()) and float(day["latitude"].max()) <= north + 1e-9
    assert west - 1e-9 <= float(day["longitude"].min()) and float(day["longitude"].max()) <= east + 1e-9

    # view time: local solar hour 0.1 h a count, in UTC
    utc = np.mod(view_raw[kept] * 0.1 - lon / 15.0, 24.0)
    np.testing.assert_allclose(day["view_time"], utc, rtol=0, atol=1e-9)
    assert 0 <= float(day["view_time"].min()) and float(day["view_time"].max()) < 24


def test_hdf4_qc_threshold_and_night_layers() -> None:
    from pyhdf.SD import SD, SDC

    hdf = SD(str(HDF), SDC.READ)
    lst_raw, qc = hdf.select("LST_Night_1km").get(), hdf.select("QC_Night").get()
    day_qc, day_lst = hdf.select("QC_Day").get(), hdf.select("LST_Day_1km").get()
    hdf.end()
    (night,) = read_modis(str(HDF), night=True)
    assert night.sizes["pixel"] == int(((lst_raw != 0) & passes_qc(qc)).sum())
    (strict,) = read_modis(str(HDF), max_lst_error_k=1)
    one_kelvin = (day_lst != 0) & ((day_qc & 0b11) <= 1) & (((day_qc >> 6) & 0b11) == 0)
    assert strict.sizes["pixel"] == int(one_kelvin.sum())
    counts = strict.attrs["qc_counts"]
    assert sum(counts.values()) == day_lst.size
    assert counts["error_le_1K"] == strict.sizes["pixel"]


def test_appeears_geotiff_against_rasterio() -> None:
    import rasterio

    with rasterio.open(TIF) as src:
        raw, scale, nodata, bounds, res = src.read(1), src.scales[0], src.nodata, src.bounds, src.res
    with rasterio.open(TIF_QC) as src:
        qc = src.read(1)
    kept = (raw != nodata) & passes_qc(qc)
    (day,) = read_modis(str(TIF))
    assert day.sizes["pixel"] == int(kept.sum()) > 0
    assert float(day["lst"].mean(dtype=np.float64)) == pytest.approx(float((raw[kept] * scale).mean()), abs=MEAN_ATOL_K)
    assert 250 < float(day["lst"].min()) and float(day["lst"].max()) < 340, "scaled once, not raw counts"
    # footprint: rasterio's bounds, half a pixel in (pixel centres)
    expected = (
        bounds.bottom + res[1] / 2,
        bounds.top - res[1] / 2,
        bounds.left + res[0] / 2,
        bounds.right - res[0] / 2,
    )
    np.testing.assert_allclose(day.attrs["footprint"], expected, rtol=0, atol=1e-9)
    # the date: AppEEARS puts it in the name only (day 228 of 2024), and the report says so
    assert (day.attrs["date"], day.attrs["date_source"]) == ("2024-08-15", "name")
    assert (day.attrs["platform"], day.attrs["view_time_source"]) == ("Aqua", "nominal overpass")
    np.testing.assert_allclose(day["view_time"], np.mod(13.5 - day["longitude"] / 15.0, 24.0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.unique(day["qc"]), np.unique(qc[kept]))


def test_appeears_netcdf_julian_calendar_against_xarray() -> None:
    import xarray as xr

    reference = xr.open_dataset(NC, engine="h5netcdf", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    days = read_modis(str(NC))
    assert [d.attrs["date"] for d in days] == [t.strftime("%Y-%m-%d") for t in reference["time"].values]
    assert reference["time"].values[0].calendar == "julian" and days[0].attrs["date"] == "2016-01-01"
    lat, lon = reference["lat"].values, reference["lon"].values
    for step, day in enumerate(days):
        lst = reference["LST_Day_1km"].isel(time=step).values  # scaled and masked by xarray
        qc = reference["QC_Day"].isel(time=step).values
        kept = ~np.isnan(lst) & ~np.isnan(qc) & passes_qc(np.nan_to_num(qc).astype(np.int16))
        assert day.sizes["pixel"] == int(kept.sum()) > 0
        assert float(day["lst"].mean(dtype=np.float64)) == pytest.approx(float(lst[kept].mean()), abs=MEAN_ATOL_K)
        assert day.attrs["footprint"] == (lat.min(), lat.max(), lon.min(), lon.max())
        assert (day.attrs["platform"], day.attrs["date_source"]) == ("Aqua", "content")
    reference.close()
