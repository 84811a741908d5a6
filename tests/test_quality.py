"""Data-quality suites against a corpus of bad inputs: each is caught by a named expectation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from corpus import append_first_message, change_values, rewrite
from ml4l import quality
from ml4l.config import Recipe
from ml4l.join import join_month, read_joined
from ml4l.lake import Lake
from ml4l.readers.modis import read_modis
from ml4l.usecases.lst.sample import ModisDay, ModisGrid, write_modis_geotiff

MONTH = "2019-01"
DAY = "2019-01-01"


def validate_era(lake: Lake, recipe: Recipe) -> quality.Validation:
    table = quality.era_month_table(lake, MONTH)
    return quality.validate(lake, "era_month", MONTH, table, quality.era_month_parameters(recipe.grid, 24))


def validate_modis(lake: Lake, recipe: Recipe, path: str) -> quality.Validation:
    return validate_modis_days(lake, recipe, read_modis(path))


def validate_modis_days(lake: Lake, recipe: Recipe, days: list) -> quality.Validation:
    table = quality.modis_day_table(days)
    return quality.validate(lake, "modis_day", DAY, table, quality.modis_day_parameters(recipe.join.max_lst_error_k))


def failed_names(outcome: quality.Validation) -> set[str]:
    return {f.name for f in outcome.failed}


def test_suites_are_declared_as_data() -> None:
    for dataset in quality.DATASETS:
        suite = yaml.safe_load((quality.SUITES_DIR / f"{dataset}.yaml").read_text())
        assert suite["name"] == dataset and suite["expectations"]
        for expectation in suite["expectations"]:
            assert set(expectation) <= {"name", "type", "kwargs", "description"}
            assert expectation["type"].startswith("expect_")


def test_clean_inputs_pass_and_are_reported(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    lake = ingested_lake
    era = validate_era(lake, tiny_recipe)
    modis = validate_modis(lake, tiny_recipe, lake.modis(DAY, "tif"))
    join_month(lake, MONTH, tiny_recipe.join)
    joined = quality.validate(lake, "joined_month", MONTH, read_joined(lake, MONTH), quality.joined_month_parameters(tiny_recipe.join.threshold_km))
    for outcome in (era, modis, joined):
        assert outcome.success, outcome.summary()
        assert outcome.docs and Path(outcome.docs.removeprefix("file://")).is_file()
    assert quality.refresh_docs(lake) == str(quality.docs_index(lake))  # the index is rebuilt once per flow run
    index = quality.docs_index(lake).read_text()
    for dataset in ("era_month", "modis_day", "joined_month"):
        assert dataset in index
    assert quality.quarantined(lake) == []


ERA_CORPUS = {
    "out_of_range": (lambda lake: change_values(lake.era_sfc(MONTH), "sp", lambda v: v * 3.0), {"sp_maximum_in_range"}),
    "celsius_for_kelvin": (lambda lake: change_values(lake.era_sfc(MONTH), "2t", lambda v: v - 273.15), {"t2m_minimum_in_range", "t2m_maximum_in_range"}),
    "duplicated_hour": (lambda lake: append_first_message(lake.era_sfc(MONTH)), {"one_field_per_variable_and_hour", "every_field_present"}),
    "missing_variable": (
        lambda lake: rewrite(lake.era_skin(MONTH), lambda i, h: __import__("eccodes").codes_get(h, "shortName") != "sd"),
        {"every_variable_present", "every_field_present"},
    ),
    "nan_over_land": (
        lambda lake: change_values(lake.era_sfc(MONTH), "skt", lambda v: np.where(np.arange(v.size) % 7 == 0, np.nan, v), first_only=True),
        {"no_nan_over_land"},
    ),
}


@pytest.mark.parametrize("case", sorted(ERA_CORPUS))
def test_bad_era_month_is_caught_and_quarantined(ingested_lake: Lake, tiny_recipe: Recipe, case: str) -> None:
    corrupt, expected = ERA_CORPUS[case]
    corrupt(ingested_lake)
    outcome = validate_era(ingested_lake, tiny_recipe)
    assert not outcome.success
    assert expected <= failed_names(outcome), outcome.summary()
    with pytest.raises(quality.QuarantinedError, match=f"quarantined: era_month {MONTH}: .*{sorted(expected)[0]}"):
        quality.refuse_quarantined(ingested_lake, "era_month", MONTH)


def write_tif(path: str, lst: np.ndarray, view: np.ndarray, modis_grid: ModisGrid, **profile_changes: object) -> None:
    write_modis_geotiff(path, ModisDay(lst, view), modis_grid)
    if profile_changes:
        with rasterio.open(path, "r+") as dst:
            for name, value in profile_changes.items():
                setattr(dst, name, value)


def test_modis_fill_values_left_in(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    (day,) = read_modis(ingested_lake.modis(DAY, "tif"))
    day["lst"][:3] = 0.0  # what a reader that kept the fill would give
    outcome = validate_modis_days(ingested_lake, tiny_recipe, [day])
    assert failed_names(outcome) == {"no_fill_values_left", "lst_within_150_380_K"}


def test_modis_pixels_outside_their_footprint(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    (day,) = read_modis(ingested_lake.modis(DAY, "tif"))
    shifted = day.assign_coords(longitude=day["longitude"] + 360.0)  # coordinates in 0..360 against a -180..180 footprint
    outcome = validate_modis_days(ingested_lake, tiny_recipe, [shifted])
    assert failed_names(outcome) == {"longitude_not_east_of_footprint"}


def test_modis_pixels_beyond_the_recipes_qc_threshold(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    (day,) = read_modis(ingested_lake.modis(DAY, "tif"))
    day["qc"][:2] = 0b11000000  # LST error > 3 K
    outcome = validate_modis_days(ingested_lake, tiny_recipe, [day])
    assert failed_names(outcome) == {"qc_classes_kept_by_the_recipe"}


def test_empty_modis_day(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    modis_grid = ModisGrid(tiny_recipe.sample.modis_resolution)
    empty = np.full(modis_grid.shape, np.nan, dtype=np.float32)
    path = ingested_lake.modis(DAY, "tif")
    write_modis_geotiff(path, ModisDay(empty, empty), modis_grid)
    outcome = validate_modis(ingested_lake, tiny_recipe, path)
    assert failed_names(outcome) == {"not_empty"}


def test_joined_month_beyond_threshold_and_duplicates(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    join_month(ingested_lake, MONTH, tiny_recipe.join)
    table = read_joined(ingested_lake, MONTH)
    table.loc[0, "distance_km"] = tiny_recipe.join.threshold_km + 1
    broken = __import__("pandas").concat([table, table.iloc[:1]])
    outcome = quality.validate(ingested_lake, "joined_month", MONTH, broken, quality.joined_month_parameters(tiny_recipe.join.threshold_km))
    assert failed_names(outcome) == {"distance_within_threshold", "time_and_cell_unique"}
    assert Path(ingested_lake.joined_month(MONTH)).is_dir(), "validation marks the month, it does not delete it"


def test_a_passing_rerun_clears_the_quarantine(ingested_lake: Lake, tiny_recipe: Recipe, sample_lake: Lake) -> None:
    original = Path(ingested_lake.era_sfc(MONTH)).read_bytes()
    change_values(ingested_lake.era_sfc(MONTH), "2t", lambda v: v - 273.15)
    assert not validate_era(ingested_lake, tiny_recipe).success
    assert [r["key"] for r in quality.quarantined(ingested_lake)] == [MONTH]
    Path(ingested_lake.era_sfc(MONTH)).write_bytes(original)
    assert validate_era(ingested_lake, tiny_recipe).success
    assert quality.quarantined(ingested_lake) == []
    quality.refuse_quarantined(ingested_lake, "era_month", MONTH)
