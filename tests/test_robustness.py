"""An operator's bad day (issue 14): bad recipes, transient and permanent I/O faults, concurrent swaps, debris, unclear paths."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from corpus import FaultInjector, assert_no_debris, december_from_january, lake_files, lake_outputs
from ml4l.config import RecipeError, SplitConfig, load_recipe
from ml4l.usecases.lst.dataset import build_ml_ready, read_normalisation
from ml4l.errors import InputError
from ml4l.join import join_month, sweep_month
from ml4l.lake import Lake, RetryPolicy, find_debris, is_transient, retry_io

SPLIT = SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02"))
FAST = RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0)


# ---- (5) recipe values, retries where the fault is ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", "join.threshold_km: Input should be a valid number (got 'abc')"),
        ("-5", "join.threshold_km: Input should be greater than 0"),
        (".inf", "join.threshold_km: Input should be a finite number"),
        ("'1e9'", "join.threshold_km: Input should be a valid number (got '1e9')"),
        ("1e9", "join.threshold_km: Input should be a valid number (got '1e9')"),  # YAML 1.1 reads 1e9 as a string
        ("600.0", "join.threshold_km: Input should be less than or equal to 500"),
        ("true", "join.threshold_km: Input should be a valid number"),
    ],
)
def test_bad_threshold_values_are_refused_naming_the_file_and_field(tmp_path: Path, tiny_recipe_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(tiny_recipe_path.read_text().replace("threshold_km: 150.0", f"threshold_km: {text}"))
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    assert str(path) in str(raised.value) and expected in str(raised.value)


def test_a_missing_recipe_or_an_unknown_key_is_a_configuration_error(tmp_path: Path, tiny_recipe_path: Path) -> None:
    with pytest.raises(RecipeError, match=f"recipe {tmp_path}/absent.yaml: no such file"):
        load_recipe(tmp_path / "absent.yaml")
    with pytest.raises(RecipeError, match="no embedded recipe"):
        load_recipe("absent")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(tiny_recipe_path.read_text().replace("threshold_km:", "treshold_km:"))
    with pytest.raises(RecipeError, match="join.treshold_km: Unexpected keyword argument"):
        load_recipe(unknown)
    assert load_recipe(tiny_recipe_path).join.threshold_km == 150.0


def test_transient_faults_are_retried_at_the_call_and_nothing_else_is() -> None:
    class ObjectStore5xx(Exception):
        status = 503

    class Forbidden(Exception):
        status = 403

    for transient in (OSError(errno.EIO, "I/O error"), TimeoutError(), ConnectionResetError(), ObjectStore5xx()):
        assert is_transient(transient), transient
    for permanent in (OSError(errno.ENOSPC, "No space left on device"), FileNotFoundError(), ValueError(), Forbidden(),
                      InputError("x.tif", "cannot read"), RecipeError("r.yaml", "join.threshold_km: bad")):
        assert not is_transient(permanent), permanent
    try:
        raise RuntimeError("wrapped") from OSError(errno.ETIMEDOUT, "timed out")
    except RuntimeError as wrapped:
        assert is_transient(wrapped)

    calls: list[int] = []

    def fails(times: int, error: Exception) -> Any:
        def call() -> str:
            calls.append(1)
            if len(calls) <= times:
                raise error
            return "done"
        calls.clear()
        return call

    assert retry_io(fails(3, OSError(errno.EIO, "I/O error")), policy=FAST) == "done" and len(calls) == 4
    with pytest.raises(OSError, match="I/O error"):  # bounded: the last fault is raised after `attempts` tries
        retry_io(fails(10, OSError(errno.EIO, "I/O error")), policy=FAST)
    assert len(calls) == FAST.attempts
    for permanent in (OSError(errno.ENOSPC, "No space left on device"), ValueError("a bug")):
        with pytest.raises(type(permanent)):
            retry_io(fails(1, permanent), policy=FAST)
        assert len(calls) == 1, permanent


def test_the_task_retry_condition_retries_only_transient_faults() -> None:
    from prefect.states import Completed, Failed

    from tasks.retry import IO_TASK_OPTIONS, transient_failure

    assert IO_TASK_OPTIONS["retry_condition_fn"] is transient_failure
    assert transient_failure(None, None, Failed(data=OSError(errno.EIO, "I/O error")))
    assert transient_failure(None, None, Failed(data=ConnectionResetError()))
    for permanent in (OSError(errno.ENOSPC, "No space left on device"), RecipeError("r.yaml", "join.threshold_km: bad"),
                      InputError("x.grib", "not GRIB"), KeyError("a bug")):
        assert not transient_failure(None, None, Failed(data=permanent)), permanent
    assert not transient_failure(None, None, Completed())


# ---- (8) one lock discipline ----


def _swap_repeatedly(root: str, writer: int, times: int) -> int:
    lake = Lake(root)
    target = lake.joined_month("2019-01")
    failures = 0
    for round_ in range(times):
        try:
            with lake.replace_whole(target) as staging:
                os.makedirs(staging)
                Path(staging, "part-0.parquet").write_text(f"{writer}:{round_}\n" * 100)
        except Exception:
            failures += 1
    return failures


def test_four_processes_swapping_one_month_never_fail_nor_leave_old_folders(tmp_path: Path) -> None:
    lake = Lake.at(str(tmp_path))
    with multiprocessing.get_context("fork").Pool(4) as pool:
        failures = pool.starmap(_swap_repeatedly, [(lake.root, writer, 30) for writer in range(4)])
    assert failures == [0, 0, 0, 0]
    content = Path(lake.joined_month("2019-01"), "part-0.parquet").read_text().splitlines()
    assert len(content) == 100 and len(set(content)) == 1  # one writer's version, whole
    assert_no_debris(lake)


# ---- the fault-injection harness: a month at 20% I/O faults ----


def test_a_month_at_20_percent_io_faults_equals_a_clean_run(tmp_path: Path, ingested_lake: Lake, tiny_recipe: Any) -> None:
    faulty = Lake.at(str(tmp_path / "faulty"))
    shutil.copytree(ingested_lake.root, faulty.root)
    injector = FaultInjector(faulty.root, rate=0.2, seed=14)
    for lake, faults in ((ingested_lake, contextlib.nullcontext()), (faulty, injector)):
        with faults:
            join_month(lake, "2019-01", tiny_recipe.join)
        december_from_january(lake)
        with faults:
            join_month(lake, "2019-02", tiny_recipe.join)
            build_ml_ready(lake, SPLIT)
    assert injector.faults >= 20 and 0.1 < injector.faults / injector.calls < 0.3, (injector.faults, injector.calls)
    assert lake_outputs(faulty) == lake_outputs(ingested_lake)
    assert_no_debris(faulty)

    published = lake_files(faulty.root, "ml")

    def refuse(staged_name: str) -> None:
        assert Path(faulty.path("ml", staged_name, "normalisation.json")).is_file()  # the new set, whole, under its hidden name
        raise InputError(faulty.path("ml", staged_name), "ml_ready: 1 of 9 expectations failed")

    with pytest.raises(InputError, match="1 of 9 expectations failed"):
        build_ml_ready(faulty, SPLIT, validate=refuse)
    assert lake_files(faulty.root, "ml") == published  # the published set is byte-identical
    assert sorted(p.name for p in Path(faulty.path("quarantine", "ml_ready", "default.rejected")).iterdir()) == [
        "normalisation.json", "test.parquet", "train.parquet", "validation.parquet"]
    assert_no_debris(faulty)


# ---- (6) no debris: sweeps spare live runs; MLflow runs of dead processes ----


def _published_month(tmp_path: Path) -> Lake:
    """A lake holding one published month (its bytes stand in for a joined table)."""
    lake = Lake.at(str(tmp_path))
    Path(lake.joined_month("2019-01")).mkdir(parents=True)
    Path(lake.joined_month("2019-01"), "part-0.parquet").write_bytes(b"the published month")
    return lake


def test_sweeps_remove_dead_runs_debris_and_spare_live_runs(tmp_path: Path) -> None:
    lake = _published_month(tmp_path)
    published = lake_files(lake.root, "joined")
    parent = Path(lake.joined_month("2019-01")).parent
    dead = [parent / ".month=01.tmp-deadbeef0001", Path(lake.path("joined", "_staging", "2019-01-deadbeef0002"))]
    for path in dead:
        path.mkdir(parents=True)
        (path / "part-0.parquet").write_bytes(b"half")
    partial = Path(lake.era_timevar, "sp", "c", "0", "0.0123456789abcdef.partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half a chunk")
    with lake.claim("livelive0003"), lake.writing(lake.writer_lock(lake.era_timevar)):
        live = parent / ".month=01.tmp-livelive0003"
        live.mkdir()
        found = {(Path(d.path).name, d.kind, d.live) for d in find_debris(lake)}
        assert found == {(".month=01.tmp-deadbeef0001", "staging", False), ("2019-01-deadbeef0002", "join-staging", False),
                         (".month=01.tmp-livelive0003", "staging", True), (partial.name, "partial-chunk", True)}
        assert sorted(sweep_month(lake, "2019-01")) == sorted(str(p) for p in dead)
        assert live.is_dir() and lake.sweep_partials(lake.era_timevar) == [] and partial.exists()
        live.rmdir()
    assert lake.sweep_partials(lake.era_timevar) == [str(partial)]
    assert lake_files(lake.root, "joined") == published
    assert_no_debris(lake)


def test_a_swap_killed_after_retiring_the_old_version_gets_it_back(tmp_path: Path) -> None:
    lake = _published_month(tmp_path)
    month = Path(lake.joined_month("2019-01"))
    published = lake_files(lake.root, "joined")
    month.rename(month.parent / ".month=01.old-deadbeef0004")  # what a kill between the two renames leaves
    assert [d.kind for d in find_debris(lake)] == ["retired"]
    assert sweep_month(lake, "2019-01") == []  # restored, not removed
    assert lake_files(lake.root, "joined") == published
    assert_no_debris(lake)


# ---- (7) clear words ----


def test_a_lake_path_that_is_not_a_lake_says_what_it_is(tmp_path: Path) -> None:
    afile = tmp_path / "lake.txt"
    afile.write_text("not a lake")
    with pytest.raises(InputError, match="not a lake: it is a file, not a directory"):
        Lake.at(str(afile)).require()
    with pytest.raises(InputError, match="no such lake: the directory does not exist"):
        Lake.at(str(tmp_path / "absent")).require()
    with pytest.raises(InputError, match="not a lake: none of raw/, era/"):
        Lake.at(str(tmp_path)).require()
    (tmp_path / "raw").mkdir()
    assert Lake.at(str(tmp_path)).require().root == str(tmp_path)


def test_training_without_an_ml_ready_set_names_the_stage_to_run_first(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no ML-ready set 'default': build it first with `ml4l dataset --name default`"):
        read_normalisation(Lake.at(str(tmp_path)))


# ---- (4) plausibility against history ----


def test_swapped_albedo_labels_fail_against_history_naming_the_variables_and_file(ingested_lake: Lake) -> None:
    from corpus import swap_labels
    from ml4l import plausibility, quality
    from ml4l.era_store import ingest_month

    lake = ingested_lake
    assert plausibility.check(lake, "2019-01") == []  # the first month: nothing to compare with, recorded as history
    assert plausibility.check(lake, "2019-02") == ["2019-01"]  # the genuine next month passes
    Path(lake.era_statistics("2019-02")).unlink()

    swap_labels(lake.era_skin("2019-02"), 15, 17)  # aluvp <-> alnip
    ingest_month(lake, "2019-02")  # every per-message check passes: both are valid albedo fields
    with pytest.raises(InputError) as raised:
        plausibility.check(lake, "2019-02")
    message = str(raised.value)
    assert message.startswith(lake.era_skin("2019-02") + ": implausible against its history")
    assert "aluvp q99" in message and "alnip q99" in message and "fitted on 2019-01" in message
    assert not any(f": {v.name} " in message for v in plausibility.TIME_VARIABLE if v.name not in ("aluvp", "alnip"))
    assert [r["key"] for r in quality.quarantined(lake) if r["dataset"] == "era_history"] == ["2019-02"]
    assert not Path(lake.era_statistics("2019-02")).exists()  # never history


def test_unexpected_raw_era_files_are_listed_and_a_second_file_for_the_month_is_an_error(tmp_path: Path) -> None:
    from ml4l.lake import era_raw_listing

    lake = Lake.at(str(tmp_path))
    sfc, skin = Path(lake.era_sfc("2019-02")), Path(lake.era_skin("2019-02"))
    for path in (sfc, skin, Path(lake.era_sfc("2019-03"))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"GRIB")
    (sfc.parent / "notes.txt").write_text("operator's notes")
    (skin.parent / "sfc_skin_unstructured_2019_03.GRIB").write_bytes(b"GRIB")
    assert era_raw_listing(lake, "2019-02").lines() == [
        f"unexpected file, not read: {sfc.parent / 'notes.txt'}",
        f"unexpected file, not read: {skin.parent / 'sfc_skin_unstructured_2019_03.GRIB'}",
    ]
    for copy in ("sfc_unstructured_2019_02 (1).grib", "sfc_unstructured_2019_02_b.grib", "SFC_UNSTRUCTURED_2019_02.GRIB"):
        (sfc.parent / copy).write_bytes(b"GRIB")
        with pytest.raises(InputError, match=rf"{copy}: a second file for 2019-02 beside {sfc}".replace("(", r"\(").replace(")", r"\)")):
            era_raw_listing(lake, "2019-02")
        (sfc.parent / copy).unlink()
