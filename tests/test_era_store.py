from __future__ import annotations

import hashlib
import multiprocessing
import shutil
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ml4l.config import Period, Recipe
from ml4l.era_store import complete_months, create_timevar_store, ingest_constants, ingest_month
from ml4l.errors import InputError
from ml4l.readers.grib import write_fields
from ml4l.grids import grid
from ml4l.lake import Lake
from ml4l.usecases.lst.sample import SampleWriter
from ml4l.variables import CONSTANT, GROUPS, TIME_VARIABLE
from corpus import append_first_message, rewrite


def store_digest(lake: Lake, flags: bool = True) -> str:
    """A hash of every file of the ERA stores, with or without the month flags."""
    digest = hashlib.sha256()
    for path, file_digest in file_digests(lake).items():
        if flags or "/_build/" not in path:
            digest.update(f"{path}:{file_digest}".encode())
    return digest.hexdigest()


def file_digests(lake: Lake) -> dict[str, str]:
    """Each file of the ERA stores (path relative to the lake) and its content hash."""
    root = Path(lake.root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(lake.path("era")).rglob("*")) if p.is_file()}


def test_store_holds_every_variable_with_units_and_the_whole_period(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    ds = xr.open_zarr(ingested_lake.era_timevar)
    assert set(ds.data_vars) == {v.name for v in TIME_VARIABLE}
    for variable in TIME_VARIABLE:
        assert ds[variable.name].dims == ("time", "cell")
        assert ds[variable.name].attrs["units"] == variable.units
        assert ds[variable.name].attrs["long_name"] == variable.long_name
    assert pd.DatetimeIndex(ds.time.values).equals(tiny_recipe.period.hours)
    g = grid(tiny_recipe.grid)
    np.testing.assert_array_equal(ds.latitude.values, g.lat)
    np.testing.assert_array_equal(ds.longitude.values, g.lon)
    assert ds.latitude.dims == ("cell",) and ds.latitude.attrs["units"] == "degrees_north"
    assert not np.isnan(ds.skt.values).any()
    assert complete_months(ingested_lake) == tiny_recipe.period.months


def test_store_values_equal_the_grib_fields(ingested_lake: Lake) -> None:
    path = ingested_lake.era_skin("2019-02")
    with open(path, "rb") as stream:
        for _ in range(5):
            handle = eccodes.codes_grib_new_from_file(stream)
        name = eccodes.codes_get(handle, "cfVarName")
        valid = pd.Timestamp(f"{eccodes.codes_get(handle, 'validityDate')}T{eccodes.codes_get(handle, 'validityTime'):04d}")
        expected = eccodes.codes_get_values(handle).astype(np.float32)
        eccodes.codes_release(handle)
    ds = xr.open_zarr(ingested_lake.era_timevar)
    np.testing.assert_array_equal(ds[name].sel(time=valid).values, expected)


def test_every_stored_field_equals_ecCodes_and_its_chunk_is_what_zarr_writes(
    ingested_lake: Lake, tiny_recipe: Recipe, tmp_path: Path
) -> None:
    """The ingest encodes and stores each hour's chunk itself: every value is ecCodes', and every chunk
    file holds the bytes zarr's own ``array[hour] = values`` writes, under the key zarr reads."""
    import zarr

    ds = xr.open_zarr(ingested_lake.era_timevar)
    fields = 0
    for month in tiny_recipe.period.months:
        for path in (ingested_lake.era_sfc(month), ingested_lake.era_skin(month)):
            with open(path, "rb") as stream:
                while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
                    name = eccodes.codes_get(handle, "cfVarName")
                    valid = pd.Timestamp(f"{eccodes.codes_get(handle, 'validityDate')}T{eccodes.codes_get(handle, 'validityTime'):04d}")
                    expected = eccodes.codes_get_values(handle).astype(np.float32)
                    eccodes.codes_release(handle)
                    np.testing.assert_array_equal(ds[name].sel(time=valid).values, expected)
                    fields += 1
    assert fields == len(ds.time) * len(TIME_VARIABLE)

    stored = zarr.open_group(ingested_lake.era_timevar, mode="r")
    for variable in TIME_VARIABLE:
        ours = stored[variable.name]
        theirs = zarr.create_array(
            tmp_path / f"{variable.name}.zarr", shape=ours.shape, chunks=ours.chunks, dtype=ours.dtype, fill_value=ours.fill_value,
            compressors=ours.compressors, chunk_key_encoding=ours.metadata.chunk_key_encoding, zarr_format=3,
        )  # fmt: skip
        theirs[:] = ours[:]
        for hour in range(ours.shape[0]):
            key = ours.metadata.encode_chunk_key((hour, 0))
            written = (Path(ingested_lake.era_timevar) / variable.name / key).read_bytes()
            assert written == (tmp_path / f"{variable.name}.zarr" / key).read_bytes(), f"{variable.name} {key}"


def test_reingesting_a_month_leaves_the_store_unchanged(ingested_lake: Lake) -> None:
    before = store_digest(ingested_lake)
    ingest_month(ingested_lake, "2019-01")
    assert store_digest(ingested_lake) == before


def test_months_can_be_ingested_in_any_order_before_others_exist(raw_lake: Lake, tiny_recipe: Recipe) -> None:
    create_timevar_store(raw_lake, tiny_recipe.grid, tiny_recipe.period)
    ingest_month(raw_lake, "2019-02")
    ds = xr.open_zarr(raw_lake.era_timevar)
    assert np.isnan(ds.t2m.sel(time="2019-01").values).all()
    assert not np.isnan(ds.t2m.sel(time="2019-02").values).any()
    assert complete_months(raw_lake) == ["2019-02"]


def test_constants_store(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    ds = xr.open_zarr(ingested_lake.era_constants)
    size = grid(tiny_recipe.grid).size
    for variable in CONSTANT:
        for version in (15, 20):
            field = ds[f"{variable.name}_v{version}"]
            assert field.shape == (size,) and field.attrs["units"] == variable.units
    assert ds.clake.shape == (12, size)
    assert ds.cl_saline.shape == (size,)
    assert (ds.cvh_v20 != ds.cvh_v15).any()


def test_store_of_another_first_month_or_days_is_refused_but_a_later_end_is_not(ingested_lake: Lake, tiny_recipe: Recipe) -> None:
    for other in (Period("2018-12", "2019-02", 1), Period("2019-01", "2019-02", 2)):
        with pytest.raises(InputError, match="store exists for"):
            create_timevar_store(ingested_lake, tiny_recipe.grid, other)
    before = store_digest(ingested_lake)
    create_timevar_store(ingested_lake, tiny_recipe.grid, Period("2019-01", "2019-12", 1))  # the store is not bounded by end
    assert store_digest(ingested_lake) == before


def test_month_before_the_first_month_is_refused(ingested_lake: Lake) -> None:
    with pytest.raises(InputError, match="month 2018-12 is before the store's first month 2019-01"):
        ingest_month(ingested_lake, "2018-12")


def add_month(lake: Lake, recipe: Recipe, month: str) -> None:
    """Raw ERA files of a month the recipe's default months do not include."""
    SampleWriter(recipe, lake).era_month(month)


def test_store_grows_for_months_out_of_order_with_holes_and_never_rewrites_a_month(raw_lake: Lake, tiny_recipe: Recipe) -> None:
    add_month(raw_lake, tiny_recipe, "2019-04")
    create_timevar_store(raw_lake, tiny_recipe.grid, tiny_recipe.period)
    assert xr.open_zarr(raw_lake.era_timevar).t2m.shape == (0, grid(tiny_recipe.grid).size)
    ingest_month(raw_lake, "2019-02")
    february = file_digests(raw_lake)
    ingest_month(raw_lake, "2019-04")  # March stays a hole
    assert complete_months(raw_lake) == ["2019-02", "2019-04"]
    ds = xr.open_zarr(raw_lake.era_timevar)
    days = pd.DatetimeIndex(ds.time.values).normalize().unique()
    assert list(days.strftime("%Y-%m-%d")) == ["2019-01-01", "2019-02-01", "2019-03-01", "2019-04-01"]
    assert np.isnan(ds.t2m.sel(time="2019-03").values).all() and np.isnan(ds.t2m.sel(time="2019-01").values).all()
    assert not np.isnan(ds.t2m.sel(time="2019-04").values).any()
    # only metadata changed: every chunk already there, February's values and time coordinates, is byte-identical
    after = file_digests(raw_lake)
    assert {p: d for p, d in february.items() if not p.endswith("zarr.json") and "/_build/" not in p} == {
        p: after[p] for p in february if not p.endswith("zarr.json") and "/_build/" not in p}
    ingest_month(raw_lake, "2019-01")  # a hole filled later
    assert complete_months(raw_lake) == ["2019-01", "2019-02", "2019-04"]
    filled = file_digests(raw_lake)
    assert {p: filled[p] for p in after if p.endswith("zarr.json")} == {p: d for p, d in after.items() if p.endswith("zarr.json")}
    ingest_month(raw_lake, "2019-04")  # idempotent
    assert file_digests(raw_lake) == filled


def _ingest(root: str, month: str) -> None:
    ingest_month(Lake(root), month)


def test_concurrent_ingests_of_different_months_equal_sequential_ones(raw_lake: Lake, tiny_recipe: Recipe, tmp_path: Path) -> None:
    """Two processes grow the store at once, to different lengths; the result is the same files as one after the other."""
    add_month(raw_lake, tiny_recipe, "2019-04")
    sequential = Lake.at(str(tmp_path / "sequential"))
    shutil.copytree(raw_lake.path("raw"), sequential.path("raw"))
    for lake in (raw_lake, sequential):
        create_timevar_store(lake, tiny_recipe.grid, tiny_recipe.period)
    for month in ("2019-02", "2019-04"):
        ingest_month(sequential, month)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.starmap(_ingest, [(raw_lake.root, "2019-04"), (raw_lake.root, "2019-02")])
    assert file_digests(raw_lake) == file_digests(sequential)
    assert complete_months(raw_lake) == ["2019-02", "2019-04"]


def corrupt_truncated(lake: Lake) -> str:
    path = lake.era_sfc("2019-01")
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2 + 17])
    return r"sfc_unstructured_2019_01\.grib: .*(truncated|corrupt)"


def corrupt_other_grid(lake: Lake) -> str:
    path = lake.era_skin("2019-01")
    g = grid("N48")
    fields = [(v, t, np.zeros(g.size)) for t in pd.date_range("2019-01-01", periods=24, freq="h") for v in GROUPS["skin"]]
    write_fields(path, g, fields)
    return r"sfc_skin_unstructured_2019_01\.grib: message 1 at byte 0: grid: N48 does not match the store's grid N32"


def corrupt_missing_variable(lake: Lake) -> str:
    rewrite(lake.era_sfc("2019-01"), lambda i, h: eccodes.codes_get(h, "shortName") != "2d")
    return r"sfc_unstructured_2019_01\.grib: variable d2m is missing$"


def corrupt_missing_hours(lake: Lake) -> str:
    rewrite(lake.era_skin("2019-01"), lambda i, h: eccodes.codes_get(h, "dataTime") not in (600, 700))
    return r"sfc_skin_unstructured_2019_01\.grib: variable aluvp is missing 2 of 24 hours, first 2019-01-01T06:00:00"


def corrupt_duplicate_hour(lake: Lake) -> str:
    append_first_message(lake.era_sfc("2019-01"))
    return r"sfc_unstructured_2019_01\.grib: duplicate field sp at 2019-01-01T00:00"


def corrupt_not_grib(lake: Lake) -> str:
    Path(lake.era_sfc("2019-01")).write_text("<html>404 Not Found</html>\n" * 50)
    return r"sfc_unstructured_2019_01\.grib: not a GRIB file"


@pytest.mark.parametrize(
    "corrupt",
    [corrupt_truncated, corrupt_other_grid, corrupt_missing_variable, corrupt_missing_hours, corrupt_duplicate_hour, corrupt_not_grib],
)
def test_bad_input_is_named_leaves_the_values_untouched_and_withdraws_the_month(ingested_lake: Lake, corrupt) -> None:
    before = store_digest(ingested_lake, flags=False)
    problem = corrupt(ingested_lake)
    with pytest.raises(InputError, match=problem):
        ingest_month(ingested_lake, "2019-01")
    assert store_digest(ingested_lake, flags=False) == before
    assert complete_months(ingested_lake) == ["2019-02"]  # its old values no longer count as ingested


def test_bad_input_in_a_fresh_month_writes_nothing(raw_lake: Lake, tiny_recipe: Recipe) -> None:
    create_timevar_store(raw_lake, tiny_recipe.grid, tiny_recipe.period)
    corrupt_missing_variable(raw_lake)
    with pytest.raises(InputError):
        ingest_month(raw_lake, "2019-01")
    assert complete_months(raw_lake) == []
    assert xr.open_zarr(raw_lake.era_timevar).sp.shape[0] == 0  # bad input does not grow the store


def test_missing_constant_is_named(raw_lake: Lake) -> None:
    rewrite(raw_lake.climate(20), lambda i, h: eccodes.codes_get(h, "shortName") != "slor")
    with pytest.raises(InputError, match=r"climate\.v020\.grib: missing constant fields: slor"):
        ingest_constants(raw_lake)
    assert not Path(raw_lake.era_constants).exists()
    assert not list(Path(raw_lake.path("era")).glob(".constants.zarr.*")), "no staging store is left behind"


def test_file_urls_resolve_to_local_paths(raw_lake: Lake) -> None:
    assert Lake.at("file://" + raw_lake.root).root == raw_lake.root


def test_lake_on_a_non_local_fsspec_url(raw_lake: Lake, tiny_recipe: Recipe) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.put(raw_lake.path("raw"), "/ml4l-test/raw", recursive=True)
    lake = Lake.at("memory://ml4l-test")
    assert not lake.is_local
    try:
        create_timevar_store(lake, tiny_recipe.grid, tiny_recipe.period)
        ingest_month(lake, "2019-01")
        assert complete_months(lake) == ["2019-01"]
        assert not np.isnan(xr.open_zarr(lake.era_timevar).t2m.sel(time="2019-01").values).any()
    finally:
        memory.rm("/ml4l-test", recursive=True)
