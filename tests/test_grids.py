from __future__ import annotations

import eccodes
import numpy as np
import pytest

from ml4l.errors import InputError
from ml4l.grids import gaussian_latitudes, grid, octahedral_pl
from ml4l.readers.grib import scan, write_fields
from ml4l.variables import BY_NAME


def eccodes_points(handle: int) -> tuple[np.ndarray, np.ndarray]:
    return eccodes.codes_get_array(handle, "latitudes"), eccodes.codes_get_array(handle, "longitudes")


@pytest.mark.parametrize("n", [32, 48, 96, 320])
def test_classic_grid_equals_eccodes_sample(n: int) -> None:
    handle = eccodes.codes_grib_new_from_samples(f"reduced_gg_pl_{n}_grib2")
    try:
        lat, lon = eccodes_points(handle)
    finally:
        eccodes.codes_release(handle)
    g = grid(f"N{n}")
    assert g.size == lat.size
    np.testing.assert_allclose(g.lat, lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(g.lon, lon, rtol=0, atol=1e-9)


@pytest.mark.parametrize("n", [96, 320])
def test_octahedral_grid_equals_eccodes(n: int) -> None:
    pl = octahedral_pl(n)
    handle = eccodes.codes_grib_new_from_samples(f"reduced_gg_pl_{n}_grib2")
    try:
        eccodes.codes_set_array(handle, "pl", pl)
        eccodes.codes_set(handle, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / pl.max())
        eccodes.codes_set_values(handle, np.zeros(pl.sum()))
        assert eccodes.codes_get(handle, "isOctahedral") == 1
        assert eccodes.codes_get(handle, "gaussianGridName") == f"O{n}"
        lat, lon = eccodes_points(handle)
    finally:
        eccodes.codes_release(handle)
    g = grid(f"O{n}")
    np.testing.assert_allclose(g.lat, lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(g.lon, lon, rtol=0, atol=1e-9)


def test_regular_ll_equals_eccodes() -> None:
    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    try:
        for key, value in [("Ni", 360), ("Nj", 181), ("iDirectionIncrementInDegrees", 1.0), ("jDirectionIncrementInDegrees", 1.0),
                           ("latitudeOfFirstGridPointInDegrees", 90.0), ("latitudeOfLastGridPointInDegrees", -90.0),
                           ("longitudeOfFirstGridPointInDegrees", 0.0), ("longitudeOfLastGridPointInDegrees", 359.0)]:
            eccodes.codes_set(handle, key, value)
        eccodes.codes_set_values(handle, np.zeros(360 * 181))
        lat, lon = eccodes_points(handle)
    finally:
        eccodes.codes_release(handle)
    g = grid("LL1")
    np.testing.assert_allclose(g.lat, lat, atol=1e-9)
    np.testing.assert_allclose(g.lon, lon, atol=1e-9)


@pytest.mark.parametrize("n", [48, 160])
def test_regular_gaussian_grid_equals_eccodes(n: int) -> None:
    handle = eccodes.codes_grib_new_from_samples("regular_gg_sfc_grib2")
    try:
        for key, value in [("N", n), ("Ni", 4 * n), ("Nj", 2 * n), ("iDirectionIncrementInDegrees", 90.0 / n),
                           ("latitudeOfFirstGridPointInDegrees", float(gaussian_latitudes(n)[0])),
                           ("latitudeOfLastGridPointInDegrees", float(-gaussian_latitudes(n)[0])),
                           ("longitudeOfFirstGridPointInDegrees", 0.0), ("longitudeOfLastGridPointInDegrees", 360.0 - 90.0 / n)]:
            eccodes.codes_set(handle, key, value)
        eccodes.codes_set_values(handle, np.zeros(8 * n * n))
        assert eccodes.codes_get(handle, "gridName") == f"F{n}"
        lat, lon = eccodes_points(handle)
    finally:
        eccodes.codes_release(handle)
    g = grid(f"F{n}")
    np.testing.assert_allclose(g.lat, lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(g.lon, lon, rtol=0, atol=1e-9)


def test_cds_quarter_degree_grid() -> None:
    g = grid("LL0.25")
    assert (g.pl.size, int(g.pl[0])) == (721, 1440)
    assert (g.lat[0], g.lat[-1], g.lon.min(), g.lon.max()) == (90.0, -90.0, 0.0, 359.75)


def test_sizes_of_the_seed_grids() -> None:
    assert grid("N320").size == 542_080
    assert grid("O1280").size == 6_599_680
    assert grid("o96").name == "O96"


def test_gaussian_latitudes_are_symmetric_and_decreasing() -> None:
    lat = gaussian_latitudes(160)
    assert lat.size == 320
    assert np.all(np.diff(lat) < 0)
    np.testing.assert_allclose(lat, -lat[::-1], atol=1e-12)
    assert 89.0 < lat[0] < 90.0


def test_unknown_grid_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown grid name"):
        grid("T639")
    with pytest.raises(ValueError, match="ships no classic"):
        grid("N33")


@pytest.mark.parametrize("name", ["N32", "O96", "LL2.5"])
def test_scan_reads_the_grid_that_was_written(tmp_path, name: str) -> None:
    g = grid(name)
    path = tmp_path / "one.grib"
    import pandas as pd

    write_fields(path, g, [(BY_NAME["t2m"], pd.Timestamp("2019-01-01"), np.full(g.size, 280.0))])
    assert scan(path).grid == g


def test_scan_names_a_file_that_is_not_grib(tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("plain text, no message in here")
    with pytest.raises(InputError, match="notes.txt: not a GRIB file"):
        scan(path)
