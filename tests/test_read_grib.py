"""``ml4l.read_grib`` on the real GRIB files of ``../shared/realdata/grib`` (read in place), against ecCodes.

For every message: the same latitude, longitude and value at every point as ecCodes'
``latitudes``, ``longitudes`` and ``values`` (NaN where the bitmap says missing), and
the same header keys. Values are compared after ecCodes' doubles are rounded to
float32, exactly; coordinates to 1e-9 degrees (both are computed in double
precision by different formulas: 360 i / pl against i * (360 / pl), a few ulps).
"""

from __future__ import annotations

import logging
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd
import pytest

import ml4l
from ml4l.errors import InputError
from ml4l.readers.grib import GribError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "realdata" / "grib"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"the real GRIB files are not here: {REAL} is absent (CI puts ../shared beside the clone)")

READABLE = [
    "O32_global.grib1", "O32_global.grib2", "era5-levels-members.grib", "fields_with_missing_values.grib",
    "ll_sn_scanning_mode.grib", "reduced_gg.grib", "regular_gg_sfc.grib", "regular_ll_sfc.grib",
    "rgg_small_subarea_cellarea_ref.grib", "scanning_mode_64.grib", "test_padding.grib", "test_single_with_missing.grib",
]  # fmt: skip
COORDINATE_ATOL = 1e-9


def eccodes_messages(path: Path) -> list[dict[str, object]]:
    """What ecCodes gives for each message: coordinates, values (NaN where missing) and header keys."""
    found = []
    with open(path, "rb") as stream:
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            try:
                values = eccodes.codes_get_values(handle)
                if eccodes.codes_get(handle, "bitmapPresent"):
                    values[values == eccodes.codes_get(handle, "missingValue")] = np.nan
                date, hhmm = eccodes.codes_get(handle, "validityDate"), eccodes.codes_get(handle, "validityTime")
                found.append(
                    {
                        "latitude": eccodes.codes_get_array(handle, "latitudes"),
                        "longitude": eccodes.codes_get_array(handle, "longitudes"),
                        "values": values,
                        "shortName": eccodes.codes_get(handle, "shortName"),
                        "paramId": eccodes.codes_get(handle, "paramId"),
                        "units": eccodes.codes_get(handle, "units"),
                        "typeOfLevel": eccodes.codes_get(handle, "typeOfLevel"),
                        "level": eccodes.codes_get(handle, "level"),
                        "number": eccodes.codes_get(handle, "number") if eccodes.codes_is_defined(handle, "number") else 0,
                        "gridType": eccodes.codes_get(handle, "gridType"),
                        "valid_time": pd.Timestamp(f"{date}") + pd.Timedelta(hours=hhmm // 100, minutes=hhmm % 100),
                    }
                )
            finally:
                eccodes.codes_release(handle)
    return found


@pytest.mark.parametrize("name", READABLE)
def test_every_message_equals_eccodes(name: str) -> None:
    path = REAL / name
    arrays = ml4l.read_grib(path)
    reference = eccodes_messages(path)
    assert len(arrays) == len(reference)
    for number, (array, expected) in enumerate(zip(arrays, reference, strict=True), start=1):
        assert array.dims == ("point",)
        assert array.dtype == np.float32
        np.testing.assert_allclose(array["latitude"].values, expected["latitude"], rtol=0, atol=COORDINATE_ATOL, err_msg=f"{name} message {number}")
        np.testing.assert_allclose(array["longitude"].values, expected["longitude"], rtol=0, atol=COORDINATE_ATOL, err_msg=f"{name} message {number}")
        np.testing.assert_array_equal(array.values, np.asarray(expected["values"]).astype(np.float32), err_msg=f"{name} message {number}")
        for key in ("shortName", "paramId", "units", "typeOfLevel", "level", "number", "gridType"):
            assert array.attrs[key] == expected[key], (name, number, key)
        assert pd.Timestamp(array.attrs["valid_time"]) == expected["valid_time"]


@pytest.mark.parametrize(
    ("name", "grid", "missing"),
    [
        ("O32_global.grib1", "O32", 0),
        ("O32_global.grib2", "O32", 0),
        ("reduced_gg.grib", "N48", 0),
        ("regular_gg_sfc.grib", "F48", 0),
        ("era5-levels-members.grib", "LL3", 0),
        ("scanning_mode_64.grib", "LL5", 0),
        ("rgg_small_subarea_cellarea_ref.grib", "O1280 area 89.877/36.233/84.815/46.185", 0),
        ("test_padding.grib", "LL4 area 73/-27/33/45", 0),
        ("fields_with_missing_values.grib", "LL2", 10808),
        ("test_single_with_missing.grib", "LL30", 38),
    ],
)
def test_grid_names_and_missing_points(name: str, grid: str, missing: int) -> None:
    first = ml4l.read_grib(REAL / name)[0]
    assert first.attrs["grid"] == grid
    assert int(np.isnan(first.values).sum()) == missing


def test_south_to_north_grid_is_not_mirrored() -> None:
    """Scanning mode 64: the first point is the South Pole, in ecCodes' order and in ours."""
    array = ml4l.read_grib(REAL / "ll_sn_scanning_mode.grib")[0]
    assert array["latitude"].values[0] == -90.0 and array["latitude"].values[-1] == 90.0


def test_padding_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ml4l.readers.grib"):
        arrays = ml4l.read_grib(REAL / "era5-levels-members.grib")
    assert len(arrays) == 160
    assert {(a.attrs["shortName"], a.attrs["level"]) for a in arrays} == {("z", 500), ("z", 850), ("t", 500), ("t", 850)}
    assert sorted({a.attrs["number"] for a in arrays}) == list(range(10))
    assert any("zero padding" in record.getMessage() for record in caplog.records)


def test_empty_file_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"empty_file\.grib: empty file"):
        ml4l.read_grib(REAL / "empty_file.grib")


def test_corrupt_message_names_file_message_offset_and_key() -> None:
    """The first message's length field is corrupt: the file is refused, naming it (the documented choice)."""
    with pytest.raises(GribError, match=r"era5-levels-corrupted\.grib: message 1 at byte 0: totalLength: cannot be framed") as caught:
        ml4l.read_grib(REAL / "era5-levels-corrupted.grib")
    assert (caught.value.number, caught.value.offset, caught.value.key) == (1, 0, "totalLength")


def test_a_directory_or_a_missing_path_gets_its_own_message(tmp_path) -> None:
    from ml4l import read_grib
    from ml4l.errors import InputError

    with pytest.raises(InputError, match="is a directory, not a GRIB file"):
        read_grib(tmp_path)
    with pytest.raises(InputError, match="file not found"):
        read_grib(tmp_path / "absent.grib")
