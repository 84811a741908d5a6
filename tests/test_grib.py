from __future__ import annotations

import eccodes
import numpy as np
import pandas as pd
import pytest

from ml4l.errors import InputError
from ml4l.grib import decode, scan, write_fields
from ml4l.grids import grid
from ml4l.variables import BY_NAME

TIMES = pd.date_range("2019-01-01", periods=3, freq="h")


def write_sample(path, bits: int, name: str = "N32") -> np.ndarray:
    g = grid(name)
    rng = np.random.default_rng(bits)
    fields = [rng.normal(280.0, 15.0, g.size) for _ in TIMES]
    write_fields(path, g, [(BY_NAME["skt"], t, f) for t, f in zip(TIMES, fields)], bits_per_value=bits)
    return np.array(fields)


def eccodes_values(path) -> np.ndarray:
    values = []
    with open(path, "rb") as stream:
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            values.append(eccodes.codes_get_values(handle))
            eccodes.codes_release(handle)
    return np.array(values)


@pytest.mark.parametrize("bits", [8, 12, 16, 24, 32])
def test_decode_equals_eccodes_bit_for_bit(tmp_path, bits: int) -> None:
    path = tmp_path / f"skt{bits}.grib"
    original = write_sample(path, bits)
    found = scan(path)
    assert [m.bits_per_value for m in found.messages] == [bits] * len(TIMES)
    decoded = decode(path, found.messages, workers=2)
    reference = eccodes_values(path).astype(np.float32)
    np.testing.assert_array_equal(decoded, reference)
    tolerance = (original.max() - original.min()) / 2**bits + float(np.spacing(np.float32(original.max())))
    assert np.max(np.abs(decoded - original)) <= tolerance


def test_scan_reads_parameters_times_and_grid(tmp_path) -> None:
    path = tmp_path / "skt.grib"
    write_sample(path, 16, "O96")
    found = scan(path)
    assert found.grid.name == "O96"
    assert [m.param_id for m in found.messages] == [235] * 3
    assert [pd.Timestamp(m.valid_time) for m in found.messages] == list(TIMES)


def test_truncated_file_is_named(tmp_path) -> None:
    path = tmp_path / "cut.grib"
    write_sample(path, 16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5000])
    with pytest.raises(InputError, match=r"cut\.grib: .*(truncated|corrupt)"):
        scan(path)


def test_trailing_garbage_is_named(tmp_path) -> None:
    path = tmp_path / "junk.grib"
    write_sample(path, 16)
    with open(path, "ab") as out:
        out.write(b"\x00" * 100)
    with pytest.raises(InputError, match=r"junk\.grib: 100 of \d+ bytes are not inside any GRIB message"):
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


def test_writer_leaves_no_partial_file_on_error(tmp_path) -> None:
    g = grid("N32")
    path = tmp_path / "broken.grib"

    def fields():
        yield BY_NAME["skt"], TIMES[0], np.zeros(g.size)
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_fields(path, g, fields())
    assert list(tmp_path.iterdir()) == []
