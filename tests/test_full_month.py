"""A full-size month within bounded memory and time: validation on witness rows and a seeded sample (each
expectation passes or fails as on the whole table), the ERA month decoded a few messages at a time, a month's
inputs written day by day in parallel, ``days: 31``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ml4l import quality
from ml4l.lake import Lake
from ml4l.validation_sample import SAMPLE_ROWS, duplicated_rows, first_of_each_value, witness_rows

ROWS = 3 * SAMPLE_ROWS  # a uniform sample of SAMPLE_ROWS misses one given row with probability 2/3


def modis_like(rows: int, seed: int) -> pd.DataFrame:
    """A clean ``modis_day`` table: in range, inside its footprint, QC classes the recipe keeps."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "lst": rng.uniform(250.0, 320.0, rows),
        "view_time": rng.uniform(0.0, 23.9, rows),
        "latitude": rng.uniform(-10.0, 10.0, rows),
        "longitude": rng.uniform(20.0, 30.0, rows),
        "qc_class": rng.choice(["error_le_1K", "error_le_2K"], rows),
        "footprint_south": -10.0 - 1e-6, "footprint_north": 10.0 + 1e-6,
        "footprint_west": 20.0 - 1e-6, "footprint_east": 30.0 + 1e-6,
    })


def one_bad_row(column: str, value: object) -> pd.DataFrame:
    table = modis_like(ROWS, seed=1)
    table.loc[ROWS // 2 + 7, column] = value  # a single row, at no special place
    return table


CASES = {
    "clean": (lambda: modis_like(ROWS, seed=1), set()),
    "too_hot": (lambda: one_bad_row("lst", 400.0), {"lst_within_150_380_K"}),
    "fill_left": (lambda: one_bad_row("lst", 0.0), {"lst_within_150_380_K", "no_fill_values_left"}),
    "east_of_footprint": (lambda: one_bad_row("longitude", 30.001), {"longitude_not_east_of_footprint"}),
    "qc_not_kept": (lambda: one_bad_row("qc_class", "error_gt_3K"), {"qc_classes_kept_by_the_recipe"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_bad_row_among_many_fails_its_expectation(tmp_path, case: str) -> None:
    build, expected = CASES[case]
    outcome = quality.validate(Lake(str(tmp_path)), "modis_day", "2019-01-01", build(), quality.modis_day_parameters(3))
    assert {f.name for f in outcome.failed} == expected, outcome.summary()
    assert outcome.rows == ROWS and outcome.rows_validated is not None and outcome.rows_validated < ROWS // 2


def test_duplicated_keys_found_sorted_or_not() -> None:
    rng = np.random.default_rng(3)
    time = np.repeat((np.datetime64("2019-01-01T00", "h") + np.arange(100)).astype("datetime64[ns]"), 1000)
    cell = np.tile(np.arange(1000, dtype=np.int32), 100)
    assert duplicated_rows([time, cell]).size == 0
    cell_twice = cell.copy()
    cell_twice[54_321] = cell_twice[54_320]  # sorted: neighbours
    rows = duplicated_rows([time, cell_twice])
    assert {54_320, 54_321} <= set(rows.tolist())
    order = rng.permutation(time.size)
    shuffled = duplicated_rows([time[order], cell_twice[order]])
    where = {int(np.flatnonzero(order == 54_320)[0]), int(np.flatnonzero(order == 54_321)[0])}
    assert where <= set(shuffled.tolist())
    assert duplicated_rows([time[order], cell[order]]).size == 0


def test_first_of_each_value() -> None:
    codes = np.array([3, 3, 1, 3, 5, 1], dtype=np.int8)
    assert first_of_each_value(codes).tolist() == [2, 0, 4]  # by value
    assert sorted(first_of_each_value(np.array(["b", "a", "b", "c"], dtype=object)).tolist()) == [0, 1, 3]


def test_suites_a_subset_cannot_decide_validate_the_whole_table() -> None:
    columns = {"x": np.arange(ROWS, dtype=np.float64), "variable": np.zeros(ROWS)}
    def suite(kind: str, **kwargs: object) -> dict:
        return {"expectations": [{"name": "e", "type": kind, "kwargs": kwargs}]}
    assert witness_rows(columns, ROWS, suite("expect_column_values_to_be_between", column="x", min_value=0)) is not None
    assert witness_rows(columns, ROWS, suite("expect_column_values_to_be_between", column="x", min_value=0, mostly=0.9)) is None
    assert witness_rows(columns, ROWS, suite("expect_column_values_to_be_between", column="x", min_value=0,
                                             row_condition='variable=="sp"', condition_parser="pandas")) is None
    assert witness_rows(columns, ROWS, suite("expect_table_row_count_to_equal", value=ROWS)) is None
    assert witness_rows(columns, ROWS, suite("expect_column_mean_to_be_between", column="x", min_value=0)) is None
    assert witness_rows(columns, SAMPLE_ROWS, suite("expect_column_values_to_be_between", column="x", min_value=0)) is None


def test_era_month_table_the_same_decoded_a_message_at_a_time(ingested_lake: Lake) -> None:
    whole = quality.era_month_table(ingested_lake, "2019-01", messages_at_once=10_000)
    streamed = quality.era_month_table(ingested_lake, "2019-01", messages_at_once=1)
    pd.testing.assert_frame_equal(whole, streamed)
    assert len(whole) > 1


def test_month_written_in_parallel_is_the_month_written_in_one_process(tmp_path, tiny_recipe, sample_lake: Lake) -> None:
    import dataclasses
    import filecmp

    from ml4l.config import Period
    from ml4l.readers.modis import read_modis
    from ml4l.usecases.lst.sample import SampleWriter, write_month_in_parallel

    recipe = dataclasses.replace(tiny_recipe, period=Period("2019-01", "2019-01", days=2))  # two days: parts concatenated
    one, many = Lake.at(str(tmp_path / "one")), Lake.at(str(tmp_path / "many"))
    SampleWriter(recipe, one).month("2019-01")
    written = write_month_in_parallel(recipe, many, "2019-01", workers=2, constants=False)
    assert len(written) == 2 + 2 * len(recipe.sample.modis_formats)
    for path in (lambda lake: lake.era_sfc("2019-01"), lambda lake: lake.era_skin("2019-01")):
        assert filecmp.cmp(path(one), path(many), shallow=False)
    for day in ("2019-01-01", "2019-01-02"):  # the parallel month's MODIS comes from the month's TruthCache
        assert filecmp.cmp(one.modis(day, "tif"), many.modis(day, "tif"), shallow=False)
        one_nc, many_nc = (xr.open_dataset(lake.modis(day, "nc"), mask_and_scale=False) for lake in (one, many))
        with one_nc, many_nc:
            xr.testing.assert_identical(one_nc, many_nc)  # the stored integers; HDF5 files carry their creation times
        (a,), (b,) = read_modis(one.modis(day, "tif")), read_modis(many.modis(day, "tif"))
        np.testing.assert_array_equal(a["lst"].to_numpy(), b["lst"].to_numpy())
        assert np.isfinite(a["lst"].to_numpy()).sum() > 0


def test_days_31_is_every_day_of_any_month() -> None:
    from ml4l.config import Period

    period = Period("2019-01", "2019-02", days=31)
    assert len(period.days_of("2019-01")) == 31 and len(period.days_of("2019-02")) == 28
    assert period.hours_before("2019-02") == 31 * 24
    assert len(Period("2020-02", days=31).days_of("2020-02")) == 29
    with pytest.raises(ValueError, match="within 1..31"):
        Period("2019-01", days=32)


def test_noise_has_the_bytes_of_numpys_outer_products() -> None:
    """Generation computes the waves in compiled loops: the bytes of NumPy's (points x waves) products, its float32
    cosine and float64 sum, which the sample files were made with."""
    from ml4l.geo import unit_vectors
    from ml4l.synthetic import _PHASE_EPOCH_HOURS, SyntheticEarth

    earth, rng = SyntheticEarth(3), np.random.default_rng(4)
    xyz = unit_vectors(rng.uniform(-90, 90, 70_000), rng.uniform(-180, 180, 70_000))  # more than one block of points
    hours = 429_500.0 + rng.uniform(0, 5000, 70_000)
    for period in (None, 36.0):
        waves = earth._waves("clouds", 700.0, period)
        phase = waves.phases + np.multiply.outer(xyz[:, 0], waves.vectors[:, 0])
        phase += np.multiply.outer(xyz[:, 1], waves.vectors[:, 1])
        phase += np.multiply.outer(xyz[:, 2], waves.vectors[:, 2])
        if period is not None:
            phase += np.multiply.outer(hours - _PHASE_EPOCH_HOURS, waves.frequencies)
        reference = np.cos(phase.astype(np.float32)).sum(axis=-1, dtype=np.float64) * waves.amplitude
        np.testing.assert_array_equal(earth.noise("clouds", xyz, 700.0, hours, period), reference)
