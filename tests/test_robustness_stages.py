"""An operator's bad day (issue 14), the stages not covered by test_robustness_kill.py: the ERA ingest, training and
prediction SIGKILLed at their first write and at their publish point, then rerun to an uninterrupted run's outputs."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from corpus import FaultInjector, assert_no_debris, december_from_january, lake_files, lake_outputs, run_killed

from ml4l import quality
from ml4l.config import Recipe, SplitConfig
from ml4l.era_store import complete_months, create_timevar_store, ingest_constants, ingest_month
from ml4l.join import join_month, read_joined_at
from ml4l.lake import Lake, find_debris
from ml4l.usecases.lst.dataset import build_ml_ready
from ml4l.variables import TIME_VARIABLE

SPLIT = SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02"))


def _copy(lake: Lake, to: Path) -> Lake:
    shutil.copytree(lake.root, to)
    return Lake.at(str(to))


def _ingest_january(lake: Lake, recipe: Recipe) -> None:
    """The ERA store created, with its constants and January: the month before the one under test."""
    create_timevar_store(lake, recipe.grid, recipe.period)
    ingest_constants(lake)
    ingest_month(lake, "2019-01")


def _killed_debris(lake: Lake) -> list[str]:
    """The kinds of debris the killed run left, none of them marked live (its process is gone)."""
    debris = find_debris(lake)
    assert not any(d.live for d in debris), debris
    return sorted({d.kind for d in debris})


# ---- a month's pipeline, from its GRIB files to the ML-ready set, at 20% I/O faults ----


def test_a_month_from_ingest_to_ml_ready_at_20_percent_io_faults_equals_a_clean_run(
    tmp_path: Path, raw_lake: Lake, tiny_recipe: Recipe
) -> None:
    _ingest_january(raw_lake, tiny_recipe)
    faulty = _copy(raw_lake, tmp_path / "faulty")
    ingest = FaultInjector(faulty.root, rate=0.2, seed=14)
    later = FaultInjector(faulty.root, rate=0.2, seed=15)
    outcomes = []
    for lake, at_ingest, afterwards in ((raw_lake, contextlib.nullcontext(), contextlib.nullcontext()), (faulty, ingest, later)):
        join_month(lake, "2019-01", tiny_recipe.join)  # the months before, for the ML-ready set's splits
        december_from_january(lake)
        with at_ingest:  # the month's GRIB files validated (decoded by ml4l), then ingested into the store
            table = quality.era_month_table(lake, "2019-02")
            era = quality.validate(lake, "era_month", "2019-02", table, quality.era_month_parameters(tiny_recipe.grid, 24))
            ingest_month(lake, "2019-02")
        with afterwards:  # joined from the store, validated before it is published, then the ML-ready set

            def check(directory: str, lake: Lake = lake, era: quality.Validation = era) -> None:
                joined = quality.validate(lake, "joined_month", "2019-02", read_joined_at(lake, directory),
                                          quality.joined_month_parameters(tiny_recipe.join.threshold_km))
                outcomes.append((era.success, era.evaluated, joined.success, joined.evaluated))

            join_month(lake, "2019-02", tiny_recipe.join, validate=check)
            build_ml_ready(lake, SPLIT)
    for injector in (ingest, later):
        assert injector.faults >= 20 and 0.1 < injector.faults / injector.calls < 0.3, (injector.faults, injector.calls)
    # the ingest's own reads and writes were hit: its GRIB files (scan, decode) and its store's chunks and metadata
    assert {Path(p).name for p in ingest.faulted} >= {"sfc_unstructured_2019_02.grib", "sfc_skin_unstructured_2019_02.grib"}
    store = [p for p in ingest.faulted if "/era/timevar.zarr/" in p]
    assert [p for p in store if Path(p).name.startswith("c.")] and [p for p in store if p.endswith("zarr.json")]
    assert [p for p in later.faulted if "/era/timevar.zarr/" in p]  # the join's reads of the store
    assert outcomes[0] == outcomes[1] and outcomes[0][0] and outcomes[0][2], outcomes
    assert lake_files(faulty.root, "era") == lake_files(raw_lake.root, "era")
    assert lake_outputs(faulty) == lake_outputs(raw_lake)
    assert_no_debris(faulty)


# ---- the ERA ingest: a new month extends the store, writes its chunks, then sets its flag ----


def test_a_killed_ingest_reruns_to_the_uninterrupted_store_and_leaves_no_debris(
    tmp_path: Path, raw_lake: Lake, tiny_recipe: Recipe
) -> None:
    _ingest_january(raw_lake, tiny_recipe)
    reference = _copy(raw_lake, tmp_path / "reference")
    ingest_month(reference, "2019-02")
    expected = lake_files(reference.root, "era")
    code = "from ml4l.era_store import ingest_month; from ml4l.lake import Lake\ningest_month(Lake({root!r}), '2019-02')"
    points = {
        "first-write": ("", ["partial-chunk"]),  # the time axis' first resize (metadata), under the store's lock
        "first-chunk": (f"/{TIME_VARIABLE[0].name}/c", ["partial-chunk"]),  # the first hour of one field, mid-month
        "publish": ("/_build/complete/c", ["partial-chunk"]),  # the month's flag, after its last field
    }
    for point, (under, kinds) in points.items():
        lake = _copy(raw_lake, tmp_path / point)
        run_killed(code.format(root=lake.root), "first-write", lake.era_timevar + under)
        assert _killed_debris(lake) == kinds, point
        assert complete_months(lake) == ["2019-01"], point  # the killed month is never taken as ingested
        ingest_month(lake, "2019-02")  # the rerun sweeps the partial chunks, then redoes the month
        assert lake_files(lake.root, "era") == expected, point
        assert_no_debris(lake)


# ---- training, then prediction with its champion ----


def test_killed_training_and_prediction_rerun_to_the_uninterrupted_champion_and_predictions(joined_lake: Lake) -> None:
    import mlflow

    from ml4l.ml.tracking import tracking_uri
    from ml4l.usecases.lst.dataset import build_ml_ready
    from ml4l.usecases.lst.predict import predict_month
    from ml4l.usecases.lst.train import CHAMPION, TrainConfig, champion_version, train_and_log

    build_ml_ready(joined_lake, SPLIT)
    lake, config = joined_lake, TrainConfig(epochs=1, batch_size=256)
    client = mlflow.MlflowClient(tracking_uri(lake))
    train = ("from ml4l.lake import Lake; from ml4l.usecases.lst.train import TrainConfig, train_and_log\n"
             f"train_and_log(Lake({lake.root!r}), config=TrainConfig(epochs=1, batch_size=256), model_name='tiny')")

    # killed at its first write to the tracking store (its parameters, a SQLite write): the run stays RUNNING
    run_killed(train, "call", "mlflow:log_params", timeout=600)
    (first,) = _runs(client)
    assert first.info.status == "RUNNING" and champion_version("tiny", client.tracking_uri) is None
    # killed as it moves the champion alias: the model was trained, measured and registered, not published.
    # That run got as far as an uninterrupted one but for the alias: its logged metrics are the reference.
    run_killed(train, "call", "mlflow.tracking.client:MlflowClient.set_registered_model_alias", timeout=600)
    (second,) = [r for r in _runs(client) if r.info.run_id != first.info.run_id]
    assert client.get_run(first.info.run_id).info.status == "KILLED"  # marked by the next run, whose claim is live
    assert second.info.status == "FINISHED" and champion_version("tiny", client.tracking_uri) is None

    rerun = train_and_log(lake, config=config, model_name="tiny")
    statuses = {r.info.run_id: r.info.status for r in _runs(client)}
    assert statuses == {first.info.run_id: "KILLED", second.info.run_id: "FINISHED", rerun.run_id: "FINISHED"}
    champion = champion_version("tiny", client.tracking_uri)
    assert rerun.champion and champion is not None and champion.run_id == rerun.run_id
    published = client.get_run(rerun.run_id).data
    assert published.metrics == second.data.metrics and published.params == second.data.params  # the same model, measured the same
    assert_no_debris(lake)

    # prediction: an uninterrupted run publishes the month; killed runs must leave it, and their reruns redo it, byte for byte
    uri = f"models:/tiny@{CHAMPION}"
    predict_month(lake, "2019-02", uri, "tiny")
    target = lake.prediction("tiny", "2019-02")
    relative = str(Path(target).relative_to(lake.root))
    expected = lake_files(lake.root, relative)
    predict = ("from ml4l.lake import Lake; from ml4l.usecases.lst.predict import predict_month\n"
               f"predict_month(Lake({lake.root!r}), '2019-02', {uri!r}, 'tiny')")
    for point, kinds, published_stays in (
        ("first-write", ["staging"], True),  # the hidden store's first file (its partial chunk inside the staging)
        ("swap", ["retired", "staging"], False),  # the old store moved aside, the new one not yet in
    ):
        run_killed(predict, point, str(Path(target).parent), timeout=600)
        assert _killed_debris(lake) == kinds, point
        assert (lake_files(lake.root, relative) == expected) == published_stays, point
        predict_month(lake, "2019-02", uri, "tiny")
        assert lake_files(lake.root, relative) == expected, point
        assert lake_files(lake.root, "predictions").keys() == expected.keys(), point
        assert_no_debris(lake)


def _runs(client: object) -> list[object]:
    """Every run in the lake's MLflow store, whatever its status."""
    return client.search_runs([e.experiment_id for e in client.search_experiments()])  # type: ignore[attr-defined]
