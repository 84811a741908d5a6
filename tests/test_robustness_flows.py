"""An operator's bad day (issue 14), through the flows: a month that fails validation, a full disk, a bad recipe."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
import yaml

from corpus import FaultInjector, assert_no_debris, lake_files
from ml4l import quality
from ml4l.join import rejected_path
from ml4l.lake import Lake

pytestmark = pytest.mark.slow


def _recipe_with(tmp_path: Path, tiny: Path, **join: Any) -> str:
    data = yaml.safe_load(tiny.read_text())
    data["join"] = {**data["join"], **join}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


# ---- (1) publish only what passed; (5) a full disk ----


def test_a_joined_month_that_fails_validation_is_quarantined_and_the_published_month_stays(
    prefect_server: None, tmp_path: Path, ingested_lake: Lake, tiny_recipe_path: Path
) -> None:
    from flows.join import join_flow

    good = join_flow(recipe=str(tiny_recipe_path), months=["2019-01"], lake_root=ingested_lake.root)
    published = lake_files(ingested_lake.root, "joined")
    assert good["2019-01"]["rows"] > 0 and published

    state = join_flow(recipe=_recipe_with(tmp_path, tiny_recipe_path, threshold_km=0.001), months=["2019-01"],
                      lake_root=ingested_lake.root, return_state=True)
    assert state.is_failed() and "joined_month 2019-01" in state.message and "not_empty" in state.message
    assert lake_files(ingested_lake.root, "joined") == published  # byte-identical, and no staging left beside it
    rejected = Path(rejected_path(ingested_lake, "2019-01"))
    assert (rejected / "part-0.parquet").is_file() and '"rows": 0' in (rejected / "_summary.json").read_text()
    assert [r["key"] for r in quality.quarantined(ingested_lake) if r["dataset"] == "joined_month"] == ["2019-01"]
    assert_no_debris(ingested_lake)

    again = join_flow(recipe=str(tiny_recipe_path), months=["2019-01"], lake_root=ingested_lake.root)  # the fixed recipe clears it
    assert again["2019-01"]["rows"] == good["2019-01"]["rows"] and not quality.quarantined(ingested_lake)


def test_a_full_disk_fails_at_once_naming_the_path_in_the_flow_state(
    prefect_server: None, ingested_lake: Lake, tiny_recipe_path: Path
) -> None:
    from flows.join import join_flow

    with FaultInjector(ingested_lake.root, rate=1.0, seed=0, error=errno.ENOSPC, where=lambda p: "/joined/_staging/" in p) as disk:
        state = join_flow(recipe=str(tiny_recipe_path), months=["2019-01"], lake_root=ingested_lake.root, return_state=True)
    assert state.is_failed()
    assert "No space left on device" in state.message and f"{ingested_lake.root}/joined/_staging/2019-01-" in state.message
    # the tiny lake has one MODIS day in January (2019-01-01): its one write is tried once, retried neither at the call nor as a task
    assert disk.faults == disk.calls == 1
    assert not quality.quarantined(ingested_lake)  # a full disk is not bad data
    assert_no_debris(ingested_lake)


def test_a_bad_recipe_fails_before_any_work_without_retry_or_quarantine(
    prefect_server: None, tmp_path: Path, ingested_lake: Lake, tiny_recipe_path: Path
) -> None:
    from flows.join import join_flow

    recipe = _recipe_with(tmp_path, tiny_recipe_path, threshold_km=-5)
    state = join_flow(recipe=recipe, months=["2019-01"], lake_root=ingested_lake.root, return_state=True)
    assert state.is_failed() and f"recipe {recipe}: field join.threshold_km: Input should be greater than 0 (got -5)" in state.message
    assert not quality.quarantined(ingested_lake) and not Path(ingested_lake.joined_month("2019-01")).exists()
