"""The GRIB reader on files made here with ecCodes: every packing, scanning mode, bitmap place and framing fault."""

from __future__ import annotations

import logging

import eccodes
import numpy as np
import pandas as pd
import pytest

import ml4l
from ml4l.errors import InputError
from ml4l.grids import grid
from ml4l.readers.grib import MARS_PADDING, GribError, decode, for_each_decoded, scan, write_fields
from ml4l.variables import BY_NAME

TIMES = pd.date_range("2019-01-01", periods=3, freq="h")


def write_sample(path, bits: int, name: str = "N32", padding: int = 0) -> np.ndarray:
    g = grid(name)
    rng = np.random.default_rng(bits)
    fields = [rng.normal(280.0, 15.0, g.size) for _ in TIMES]
    write_fields(path, g, [(BY_NAME["skt"], t, f) for t, f in zip(TIMES, fields)], bits_per_value=bits, padding=padding)
    return np.array(fields)


def eccodes_fields(path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(latitudes, longitudes, values with NaN where missing) of each message, from ecCodes."""
    found = []
    with open(path, "rb") as stream:
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            values = eccodes.codes_get_values(handle)
            if eccodes.codes_get(handle, "bitmapPresent"):
                values[values == eccodes.codes_get(handle, "missingValue")] = np.nan
            found.append((eccodes.codes_get_array(handle, "latitudes"), eccodes.codes_get_array(handle, "longitudes"), values))
            eccodes.codes_release(handle)
    return found


def assert_reads_as_eccodes(path, longitude_modulo: bool = False) -> list:
    arrays = ml4l.read_grib(path)
    reference = eccodes_fields(path)
    assert len(arrays) == len(reference)
    for array, (lat, lon, values) in zip(arrays, reference, strict=True):
        np.testing.assert_allclose(array["latitude"].values, lat, rtol=0, atol=1e-9)
        lon_error = array["longitude"].values - lon
        if longitude_modulo:
            lon_error = (lon_error + 180.0) % 360.0 - 180.0
        np.testing.assert_allclose(lon_error, 0.0, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(array.values, values.astype(np.float32))
    return arrays


def write_messages(path, sample: str, edits: list[dict[str, object]], values: list[np.ndarray]) -> None:
    """One message per ``edits`` entry, from ecCodes ``sample`` with those keys set, then ``values``."""
    out = []
    for keys, field in zip(edits, values, strict=True):
        handle = eccodes.codes_grib_new_from_samples(sample)
        try:
            for key, value in keys.items():
                if key == "packingType":
                    continue
                eccodes.codes_set(handle, key, value)
            if np.isnan(field).any():
                eccodes.codes_set(handle, "bitmapPresent", 1)
                field = np.where(np.isnan(field), eccodes.codes_get(handle, "missingValue"), field)
            eccodes.codes_set_values(handle, field)
            if "packingType" in keys:
                eccodes.codes_set(handle, "packingType", keys["packingType"])
                eccodes.codes_set_values(handle, field)
            out.append(eccodes.codes_get_message(handle))
        finally:
            eccodes.codes_release(handle)
    path.write_bytes(b"".join(out))


LL_5 = {"Ni": 72, "Nj": 37, "iDirectionIncrementInDegrees": 5.0, "jDirectionIncrementInDegrees": 5.0}


def ll_keys(north_to_south: bool = True, west_to_east: bool = True, j_consecutive: bool = False, west: float = 0.0) -> dict[str, object]:
    lat1, lat2 = (90.0, -90.0) if north_to_south else (-90.0, 90.0)
    lon1, lon2 = (west, west + 355.0) if west_to_east else (west + 355.0, west)
    return {
        **LL_5,
        "iScansNegatively": int(not west_to_east), "jScansPositively": int(not north_to_south), "jPointsAreConsecutive": int(j_consecutive),
        "latitudeOfFirstGridPointInDegrees": lat1, "latitudeOfLastGridPointInDegrees": lat2,
        "longitudeOfFirstGridPointInDegrees": lon1, "longitudeOfLastGridPointInDegrees": lon2,
    }  # fmt: skip


@pytest.mark.parametrize("bits", [8, 12, 16, 24, 32])
def test_decode_equals_eccodes_bit_for_bit(tmp_path, bits: int) -> None:
    path = tmp_path / f"skt{bits}.grib"
    original = write_sample(path, bits)
    found = scan(path)
    assert [m.bits_per_value for m in found.messages] == [bits] * len(TIMES)
    assert all(m.fast == (bits != 12) for m in found.messages)  # 12 bits goes to ecCodes
    decoded = decode(path, found.messages, workers=2)
    reference = np.array([values for _, _, values in eccodes_fields(path)]).astype(np.float32)
    np.testing.assert_array_equal(decoded, reference)
    tolerance = (original.max() - original.min()) / 2**bits + float(np.spacing(np.float32(original.max())))
    assert np.max(np.abs(decoded - original)) <= tolerance


def test_streamed_decode_hands_each_field_once_from_reused_buffers(tmp_path) -> None:
    """for_each_decoded gives each message's values, own decoder and ecCodes alike, to the consumer once, in any
    thread; a thread's buffer is reused, and an error in the consumer is raised."""
    path = tmp_path / "mixed.grib"
    parts = []
    for bits in (16, 12, 24):  # 12 bits goes to ecCodes
        part = tmp_path / f"{bits}.grib"
        write_sample(part, bits)
        parts.append(part.read_bytes())
    path.write_bytes(b"".join(parts))
    messages = scan(path).messages
    seen: dict[int, np.ndarray] = {}
    buffers: set[int] = set()

    def keep(index: int, values: np.ndarray) -> None:
        assert index not in seen
        seen[index] = values.copy()
        buffers.add(values.ctypes.data)

    for_each_decoded(path, messages, keep, workers=2)
    assert sorted(seen) == list(range(len(messages)))
    np.testing.assert_array_equal(np.array([seen[k] for k in range(len(messages))]), decode(path, messages, workers=1))
    assert len(buffers) <= 2, "one buffer per thread, not one per message"

    def fail(index: int, values: np.ndarray) -> None:
        raise RuntimeError(f"consumer failed at {index}")

    with pytest.raises(RuntimeError, match="consumer failed at"):
        for_each_decoded(path, messages, fail, workers=2)


@pytest.mark.parametrize("decimal", [-2, 1, 3, 6, 7])  # 6, 7: ecCodes' 1/10/10... differs from 10.0 ** -D in the last bit
def test_decimal_scaling_equals_eccodes(tmp_path, decimal: int) -> None:
    """Messages with a decimal scale factor decode to ecCodes' values, rounded to float32, exactly.

    ecCodes picks D itself when it packs, so D is written into section 5 (octets 18-19,
    sign and magnitude) of 8 to 32-bit messages afterwards: still valid messages, scaled by 10**-D.
    """
    rng = np.random.default_rng(decimal + 10)
    messages = []
    for bits in (8, 16, 24, 32):
        handle = eccodes.codes_grib_new_from_samples("reduced_gg_pl_32_grib2")
        try:
            eccodes.codes_set(handle, "bitsPerValue", bits)
            eccodes.codes_set_values(handle, rng.normal(280.0, 30.0, grid("N32").size))
            section5 = eccodes.codes_get(handle, "offsetSection5")
            message = bytearray(eccodes.codes_get_message(handle))
        finally:
            eccodes.codes_release(handle)
        message[section5 + 17 : section5 + 19] = (abs(decimal) | (0x8000 if decimal < 0 else 0)).to_bytes(2, "big")
        messages.append(bytes(message))
    path = tmp_path / "scaled.grib"
    path.write_bytes(b"".join(messages))
    assert all(m.fast and m.decimal_scale_factor == decimal for m in scan(path).messages)
    assert_reads_as_eccodes(path)


def test_constant_field_is_the_reference_value(tmp_path) -> None:
    path = tmp_path / "constant.grib"
    write_messages(path, "regular_ll_sfc_grib1", [{**ll_keys(), "decimalScaleFactor": 2}], [np.full(72 * 37, 273.15)])
    (message,) = scan(path).messages
    assert message.bits_per_value == 0 and message.fast
    assert_reads_as_eccodes(path)


@pytest.mark.parametrize("sample", ["regular_ll_sfc_grib1", "regular_ll_sfc_grib2"])
@pytest.mark.parametrize(
    "scanning",
    [
        {"north_to_south": False},
        {"west_to_east": False},
        {"north_to_south": False, "west_to_east": False},
        {"j_consecutive": True},
        {"j_consecutive": True, "north_to_south": False, "west_to_east": False},
    ],
)
def test_every_scanning_mode_gives_ecCodes_coordinates_and_canonical_order(tmp_path, sample: str, scanning: dict[str, bool]) -> None:
    rng = np.random.default_rng(1)
    canonical_field = rng.normal(280.0, 10.0, 72 * 37)
    path = tmp_path / "scanned.grib"
    # the same field in the default mode and in the mode under test
    g = grid("LL5")
    lat, lon = g.lat.reshape(37, 72), g.lon.reshape(37, 72)
    field = canonical_field.reshape(37, 72)
    if scanning.get("north_to_south") is False:
        field, lat, lon = field[::-1], lat[::-1], lon[::-1]
    if scanning.get("west_to_east") is False:
        field, lat, lon = field[:, ::-1], lat[:, ::-1], lon[:, ::-1]
    if scanning.get("j_consecutive"):
        field = field.T
    write_messages(path, sample, [ll_keys(), ll_keys(**scanning)], [canonical_field, field.ravel()])
    arrays = assert_reads_as_eccodes(path)
    found = scan(path)
    assert [m.grid.name for m in found.messages] == ["LL5", "LL5"]
    assert found.messages[1].layout.order is not None
    canonical = decode(path, found.messages)
    np.testing.assert_array_equal(canonical[0], canonical[1])  # one canonical order whatever the scanning mode
    np.testing.assert_array_equal(np.sort(arrays[1].values), np.sort(arrays[0].values))


def test_global_grid_from_minus_180_is_turned_to_start_at_0(tmp_path) -> None:
    rng = np.random.default_rng(2)
    path = tmp_path / "dateline.grib"
    write_messages(path, "regular_ll_sfc_grib2", [ll_keys(west=-180.0)], [rng.normal(280.0, 10.0, 72 * 37)])
    assert scan(path).grid == grid("LL5")
    arrays = assert_reads_as_eccodes(path, longitude_modulo=True)
    assert arrays[0]["longitude"].values.min() >= 0.0


@pytest.mark.parametrize("position", [0, 1, 2])
def test_a_bitmap_in_any_message(tmp_path, position: int) -> None:
    rng = np.random.default_rng(3)
    fields = [rng.normal(280.0, 10.0, 72 * 37) for _ in range(3)]
    fields[position][rng.random(72 * 37) < 0.3] = np.nan
    path = tmp_path / "bitmap.grib"
    write_messages(path, "regular_ll_sfc_grib1", [ll_keys()] * 3, fields)
    arrays = assert_reads_as_eccodes(path)
    assert [bool(np.isnan(a.values).any()) for a in arrays] == [k == position for k in range(3)]
    canonical = decode(path, scan(path).messages)  # was a BufferError: buffer sized by numberOfValues
    np.testing.assert_array_equal(np.isnan(canonical[position]), np.isnan(fields[position]))


@pytest.mark.parametrize("packing", ["grid_ccsds", "grid_jpeg", "grid_complex", "grid_complex_spatial_differencing", "grid_ieee", "grid_second_order"])
def test_other_packings_go_to_eccodes(tmp_path, packing: str) -> None:
    rng = np.random.default_rng(4)
    field = rng.normal(280.0, 10.0, 72 * 37)
    field[:100] = np.nan
    path = tmp_path / f"{packing}.grib"
    write_messages(path, "regular_ll_sfc_grib2", [{**ll_keys(), "packingType": packing}], [field])
    (message,) = scan(path).messages
    assert message.packing_type == packing and not message.fast
    assert_reads_as_eccodes(path)


def test_mixed_grids_are_read_per_message_and_refused_as_one(tmp_path) -> None:
    path = tmp_path / "mixed.grib"
    one, two = tmp_path / "one.grib", tmp_path / "two.grib"
    write_sample(one, 16, "N32")
    write_sample(two, 16, "O32")
    path.write_bytes(one.read_bytes() + two.read_bytes())
    arrays = ml4l.read_grib(path)
    assert [a.attrs["grid"] for a in arrays] == ["N32"] * 3 + ["O32"] * 3
    with pytest.raises(GribError, match=r"mixed\.grib: message 4 at byte \d+: grid: O32 differs from N32"):
        scan(path).grid


def test_mars_padding_is_skipped_and_logged(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "padded.grib"
    write_sample(path, 16, padding=MARS_PADDING)
    assert path.stat().st_size % MARS_PADDING == 0
    with caplog.at_level(logging.INFO, logger="ml4l.readers.grib"):
        found = scan(path)
    assert len(found.messages) == 3 and all(m.offset % MARS_PADDING == 0 for m in found.messages)
    assert sum("zero padding" in r.getMessage() for r in caplog.records) == 3
    assert_reads_as_eccodes(path)


def test_stray_bytes_are_skipped_with_a_warning(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "junk.grib"
    write_sample(path, 16)
    data = path.read_bytes()
    path.write_bytes(b"junk" + data + b"trailing junk")
    with caplog.at_level(logging.WARNING, logger="ml4l.readers.grib"):
        assert len(scan(path).messages) == 3
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "skipped 4 bytes outside any GRIB message at byte 0",
        f"skipped 13 bytes outside any GRIB message at byte {len(data) + 4}",
    ]


def test_truncated_file_names_message_offset_and_key(tmp_path) -> None:
    path = tmp_path / "cut.grib"
    write_sample(path, 16)
    data = path.read_bytes()
    length = len(data) // 3
    path.write_bytes(data[: len(data) - 5000])
    with pytest.raises(GribError, match=rf"cut\.grib: message 3 at byte {2 * length}: totalLength: cannot be framed"):
        scan(path)


@pytest.mark.parametrize(("content", "problem"), [(b"", "empty file"), (b"x" * 1000, "not a GRIB file")])
def test_non_grib_files_are_named(tmp_path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.grib"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"bad\.grib: {problem}"):
        scan(path)


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(InputError, match="nowhere.grib: file not found"):
        scan(tmp_path / "nowhere.grib")


def test_unsupported_grid_is_refused_by_name(tmp_path) -> None:
    path = tmp_path / "rotated.grib"
    handle = eccodes.codes_grib_new_from_samples("rotated_ll_sfc_grib2")
    try:
        path.write_bytes(eccodes.codes_get_message(handle))
    finally:
        eccodes.codes_release(handle)
    with pytest.raises(GribError, match=r"rotated\.grib: message 1 at byte 0: gridType: 'rotated_ll' is not supported"):
        ml4l.read_grib(path)


def test_cds_form_round_trip(tmp_path) -> None:
    """The CDS's ERA5 form: LL0.25, 721 x 1440 from 90 to -90 and 0 to 359.75, padded messages."""
    g = grid("LL0.25")
    path = tmp_path / "era5.grib"
    field = np.cos(np.radians(g.lat)) * 30.0 + 250.0
    write_fields(path, g, [(BY_NAME["skt"], TIMES[0], field)], padding=MARS_PADDING)
    (array,) = ml4l.read_grib(path)
    assert array.attrs["grid"] == "LL0.25" and array.size == 721 * 1440
    assert (array["latitude"].values[0], array["longitude"].values[1439]) == (90.0, 359.75)
    assert_reads_as_eccodes(path)


def test_writer_leaves_no_partial_file_on_error(tmp_path) -> None:
    g = grid("N32")
    path = tmp_path / "broken.grib"

    def fields():
        yield BY_NAME["skt"], TIMES[0], np.zeros(g.size)
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_fields(path, g, fields())
    assert list(tmp_path.iterdir()) == []


def cds_recipe(grid_name: str, months: tuple[str, str], split: bool) -> dict[str, object]:
    recipe: dict[str, object] = {
        "name": f"cds-{grid_name}",
        "grid": grid_name,
        "period": {"start": months[0], "end": months[1], "days": 1},
        "sample": {"modis_resolution": 2.0, "seed": 11, "modis_formats": ["tif"], "bits_per_value": 16},
        "join": {"threshold_km": 150.0, "lat_limit": 70.0},
        "train": {"epochs": 2, "patience": 1, "batch_size": 256},
    }
    if split:
        recipe["split"] = {"train": ["2019-01", "2019-01"], "validation": ["2019-02", "2019-02"], "test": ["2019-03", "2019-03"]}
    return recipe


def test_cds_form_months_run_through_ingest_join_dataset_and_training(tmp_path) -> None:
    """Three one-day months of padded regular lat-lon GRIB (the CDS form, at 2 degrees to keep it quick)."""
    from ml4l.config import recipe_from_dict
    from ml4l.usecases.lst.dataset import build_ml_ready, read_split
    from ml4l.era_store import create_timevar_store, ingest_constants, ingest_month
    from ml4l.join import join_month, read_joined
    from ml4l.lake import Lake
    from ml4l.usecases.lst.sample import generate
    from ml4l.usecases.lst.train import train_and_log

    recipe = recipe_from_dict(cds_recipe("LL2", ("2019-01", "2019-03"), split=True))
    lake = Lake.at(str(tmp_path / "lake"))
    generate(recipe, lake)
    sfc = lake.era_sfc("2019-01")
    assert scan(sfc).grid == grid("LL2") and all(m.offset % MARS_PADDING == 0 for m in scan(sfc).messages)
    create_timevar_store(lake, recipe.grid, recipe.period)
    ingest_constants(lake)
    for month in recipe.period.months:
        ingest_month(lake, month)
        join_month(lake, month, recipe.join)
    joined = read_joined(lake, "2019-01")
    assert len(joined) > 0 and joined["distance_km"].max() <= recipe.join.threshold_km
    assert recipe.split is not None
    build_ml_ready(lake, recipe.split)
    assert len(read_split(lake, "test")) > 0
    result = train_and_log(lake, config=recipe.train)
    assert np.isfinite(result.metrics["test_mae"])


@pytest.mark.slow
def test_cds_quarter_degree_month_through_ingest_and_join(tmp_path) -> None:
    """The CDS's own LL0.25 (721 x 1440), one day, padded, through ingest and join."""
    from ml4l.config import recipe_from_dict
    from ml4l.era_store import create_timevar_store, ingest_constants, ingest_month, store_period
    from ml4l.join import join_month, read_joined
    from ml4l.lake import Lake
    from ml4l.usecases.lst.sample import generate

    recipe = recipe_from_dict(cds_recipe("LL0.25", ("2019-01", "2019-01"), split=False))
    lake = Lake.at(str(tmp_path / "lake"))
    generate(recipe, lake)
    create_timevar_store(lake, recipe.grid, recipe.period)
    ingest_constants(lake)
    ingest_month(lake, "2019-01")
    assert store_period(lake.era_timevar)[0] == grid("LL0.25")
    join_month(lake, "2019-01", recipe.join)
    joined = read_joined(lake, "2019-01")
    assert len(joined) > 0 and joined["distance_km"].max() <= 0.25 * 111.2 / np.sqrt(2) * 1.01


def test_a_grib2_message_of_several_fields_is_refused(tmp_path) -> None:
    """ecCodes reads only the first field of such a message by default: refused rather than half read."""
    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    try:
        message = eccodes.codes_get_message(handle)
        section4 = eccodes.codes_get(handle, "offsetSection4")
    finally:
        eccodes.codes_release(handle)
    fields = message[section4:-4]  # sections 4 to 7 of the one field, twice
    doubled = bytearray(message[:section4] + fields + fields + b"7777")
    doubled[8:16] = len(doubled).to_bytes(8, "big")
    path = tmp_path / "two-fields.grib"
    path.write_bytes(bytes(doubled))
    with pytest.raises(GribError, match=r"two-fields\.grib: message 1 at byte 0: numberOfSection: section 4 repeats"):
        ml4l.read_grib(path)
