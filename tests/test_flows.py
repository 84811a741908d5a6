"""Flows and tasks against a real (temporary) Prefect server."""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
import sys
from pathlib import Path

import eccodes
import pytest
import xarray as xr
import yaml

from ml4l.config import Recipe
from ml4l.era_store import complete_months
from ml4l.lake import Lake

REPO = Path(__file__).resolve().parents[1]


def test_ingest_flow_writes_both_stores(prefect_server, raw_lake: Lake, tiny_recipe_path: Path, tiny_recipe: Recipe) -> None:
    from flows.ingest import ingest_flow

    stores = ingest_flow(recipe=str(tiny_recipe_path), lake_root=raw_lake.root)
    assert stores == {"timevar": raw_lake.era_timevar, "constants": raw_lake.era_constants}
    assert complete_months(raw_lake) == tiny_recipe.period.months
    assert int(xr.open_zarr(raw_lake.era_timevar).t2m.notnull().sum()) == tiny_recipe.period.hours.size * 6114


def test_a_bad_month_fails_the_flow_but_not_the_other_months(prefect_server, raw_lake: Lake, tiny_recipe_path: Path) -> None:
    from flows.ingest import ingest_flow

    Path(raw_lake.era_sfc("2019-02")).write_bytes(b"not grib at all" * 10)
    state = ingest_flow(recipe=str(tiny_recipe_path), lake_root=raw_lake.root, return_state=True)
    assert state.is_failed()
    assert "sfc_unstructured_2019_02.grib: not a GRIB file" in state.message
    assert complete_months(raw_lake) == ["2019-01"]


def test_bad_input_is_not_retried_but_other_errors_are(prefect_server, raw_lake: Lake, tiny_recipe_path: Path, monkeypatch) -> None:
    from prefect import flow

    from ml4l import era_store
    from tasks.era import create_store, ingest_month

    calls = {"n": 0}
    real = era_store.ingest_month

    def flaky(lake, month, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionResetError(errno.ECONNRESET, "transient: connection reset")
        return real(lake, month, **kwargs)

    @flow
    def one_month(month: str) -> str:
        store = create_store(raw_lake.root, str(tiny_recipe_path))
        return ingest_month.with_options(retry_delay_seconds=0)(raw_lake.root, month, store)

    monkeypatch.setattr(era_store, "ingest_month", flaky)
    assert one_month("2019-01") == raw_lake.era_timevar
    assert calls["n"] == 2, "the transient error was retried once"

    calls["n"] = 1  # no more transient failures: the next failure is bad input
    Path(raw_lake.era_skin("2019-02")).write_bytes(b"")
    state = one_month("2019-02", return_state=True)
    assert state.is_failed()
    assert calls["n"] == 2, "bad input was tried once, not retried"


def test_join_flow_writes_each_month_and_isolates_a_bad_one(prefect_server, ingested_lake: Lake, tiny_recipe_path: Path) -> None:
    from flows.join import join_flow
    from ml4l.join import read_joined

    summaries = join_flow(recipe=str(tiny_recipe_path), lake_root=ingested_lake.root)
    assert sorted(summaries) == ["2019-01", "2019-02"]
    for month, summary in summaries.items():
        assert summary["rows"] == len(read_joined(ingested_lake, month)) > 0
        assert summary["counts"]["matched"] == int(read_joined(ingested_lake, month)["lst_count"].sum())

    Path(ingested_lake.modis("2019-02-01", "tif")).write_bytes(b"garbage")
    before = read_joined(ingested_lake, "2019-02")
    state = join_flow(recipe=str(tiny_recipe_path), lake_root=ingested_lake.root, return_state=True)
    assert state.is_failed()
    assert "2019-02" in state.message and "2019-02-01.tif: not a MODIS file" in state.message
    assert read_joined(ingested_lake, "2019-02").equals(before), "the failed month keeps its previous output"
    assert Path(ingested_lake.joined_month("2019-01"), "part-0.parquet").is_file()
    assert not any(Path(ingested_lake.path("joined", "_staging")).iterdir()), "the failed month's staged parts are removed"


def test_a_corrupted_month_is_quarantined_and_the_others_are_unaffected(
    prefect_server, raw_lake: Lake, sample_lake: Lake, tmp_path: Path, tiny_recipe_path: Path
) -> None:
    import asyncio

    from corpus import change_values
    from flows.ingest import ingest_flow
    from flows.join import join_flow
    from ml4l import quality
    from ml4l.join import read_joined
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    recipe = str(tiny_recipe_path)
    change_values(raw_lake.era_sfc("2019-02"), "2t", lambda v: v - 273.15)  # Celsius where Kelvin is expected
    state = ingest_flow(recipe=recipe, lake_root=raw_lake.root, return_state=True)
    assert state.is_failed() and "era_month 2019-02" in state.message and "t2m_minimum_in_range" in state.message
    assert complete_months(raw_lake) == ["2019-01"]
    state = join_flow(recipe=recipe, lake_root=raw_lake.root, return_state=True)
    assert state.is_failed() and "2019-02" in state.message and "quarantined" in state.message

    records = quality.quarantined(raw_lake)
    assert [(r["dataset"], r["key"]) for r in records] == [("era_month", "2019-02")]
    assert {"t2m_minimum_in_range", "t2m_maximum_in_range"} <= {f["name"] for f in records[0]["failed"]}
    page = Path(records[0]["docs"].removeprefix("file://")).read_text()
    assert "era_month-2019-02" in page and "Data asset: era_month (batch 2019-02)" in page and "__none__" not in page
    index = quality.docs_index(raw_lake).read_text()  # rebuilt when each flow ended
    assert "era_month-2019-02" in index and "modis_day" in index and "joined_month" in index
    site = quality.docs_index(raw_lake).parent
    for html in site.rglob("*.html"):  # every script and stylesheet is the site's own copy
        assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html.read_text()), html

    async def artifacts(prefix: str) -> list:
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix)))

    table = asyncio.run(artifacts("dq-era-month-2019-02"))
    assert any("t2m_minimum_in_range" in str(a.data) for a in table)
    assert any(a.type == "markdown" or "Data Docs" in str(a.data) for a in asyncio.run(artifacts("dq-era-month-2019-02-docs")))

    clean = Lake(str(tmp_path / "clean"))
    shutil.copytree(sample_lake.path("raw"), Path(clean.root) / "raw")
    ingest_flow(recipe=recipe, lake_root=clean.root)
    join_flow(recipe=recipe, lake_root=clean.root)
    assert read_joined(raw_lake, "2019-01").equals(read_joined(clean, "2019-01")), "January is as in a clean run"
    assert (xr.open_zarr(raw_lake.era_timevar).isel(time=slice(0, 24)).t2m.values == xr.open_zarr(clean.era_timevar).isel(time=slice(0, 24)).t2m.values).all()

    shutil.copy(sample_lake.era_sfc("2019-02"), raw_lake.era_sfc("2019-02"))  # the input is fixed: re-running clears it
    ingest_flow(recipe=recipe, months=["2019-02"], lake_root=raw_lake.root)
    join_flow(recipe=recipe, months=["2019-02"], lake_root=raw_lake.root)
    assert quality.quarantined(raw_lake) == []
    assert read_joined(raw_lake, "2019-02").equals(read_joined(clean, "2019-02"))


def test_sample_flow_writes_the_seed_layout(prefect_server, tmp_path: Path, tiny_recipe_path: Path) -> None:
    from flows.sample import sample_flow

    root = sample_flow(recipe=str(tiny_recipe_path), months=["2019-01"], lake_root=str(tmp_path))
    lake = Lake(root)
    for path in [lake.era_sfc("2019-01"), lake.era_skin("2019-01"), lake.climate(15), lake.climate(20),
                 lake.lake_cover(12), lake.saline_lakes(), lake.modis("2019-01-01", "tif"), lake.modis("2019-01-01", "nc")]:
        assert Path(path).is_file(), path
    with open(lake.era_sfc("2019-01"), "rb") as stream:
        handle = eccodes.codes_grib_new_from_file(stream)
        assert eccodes.codes_get(handle, "editionNumber") == 1
        assert eccodes.codes_get(handle, "gridType") == "reduced_gg"
        eccodes.codes_release(handle)


def test_quarantine_command_lists_months_and_reasons(raw_lake: Lake, capsys) -> None:
    from flows.cli import main
    from ml4l import quality

    assert main(["quarantine", "--lake", raw_lake.root]) == 0
    assert "nothing is quarantined" in capsys.readouterr().out
    failed = [quality.FailedExpectation("t2m_minimum_in_range", "expect_column_values_to_be_between", "min", 100.0, None)]
    quality.quarantine(raw_lake, "era_month", "2019-02", "era_month 2019-02: 1 of 36 expectations failed: t2m_minimum_in_range", failed)
    assert main(["quarantine", "--lake", raw_lake.root]) == 0
    out = capsys.readouterr().out
    assert "era_month     2019-02" in out and "- t2m_minimum_in_range (expect_column_values_to_be_between, 100% unexpected)" in out


def test_months_are_checked() -> None:
    from flows.common import months_of

    with pytest.raises(ValueError, match="month must be YYYY-MM"):
        months_of("demo", ["2019-13"])


def test_cli_help_for_every_command() -> None:
    from flows.cli import COMMANDS

    for command in ([], *([name] for name in COMMANDS)):
        result = subprocess.run([sys.executable, "-m", "flows.cli", *command, "--help"], capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 0, result.stderr
        assert "usage: ml4l" in result.stdout


def test_prefect_yaml_entrypoints_exist() -> None:
    import importlib

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        module_path, function = deployment["entrypoint"].split(":")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, function)), deployment["name"]


def test_science_library_never_imports_prefect() -> None:
    code = (
        "import importlib, pkgutil, sys, ml4l\n"
        "for m in pkgutil.walk_packages(ml4l.__path__, 'ml4l.'): importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'prefect' or n.startswith('prefect.'))\n"
        "print(len(bad)); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
