"""An operator's bad day (issue 14): stages SIGKILLed at their first write and at their swap, then rerun; MLflow runs left RUNNING."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import assert_no_debris, lake_outputs, run_killed
from ml4l.config import SplitConfig, load_recipe
from ml4l.usecases.lst.dataset import build_ml_ready
from ml4l.join import join_month
from ml4l.lake import Lake, find_debris

SPLIT = SplitConfig(train=("2019-01", "2019-01"), validation=("2018-12", "2018-12"), test=("2019-02", "2019-02"))


# ---- SIGKILL at each stage's first write and at its swap ----


@pytest.mark.parametrize("point", ["first-write", "swap"])
def test_a_killed_stage_reruns_to_the_uninterrupted_outputs_and_leaves_no_debris(
    point: str, tmp_path: Path, joined_lake: Lake, tiny_recipe_path: Path
) -> None:
    reference = _outputs_after(joined_lake, tiny_recipe_path)
    before = lake_outputs(joined_lake)
    join = (f"from ml4l.config import load_recipe; from ml4l.join import join_month; from ml4l.lake import Lake\n"
            f"join_month(Lake({joined_lake.root!r}), '2019-01', load_recipe({str(tiny_recipe_path)!r}).join)")
    dataset = (f"from ml4l.config import SplitConfig; from ml4l.usecases.lst.dataset import build_ml_ready; from ml4l.lake import Lake\n"
               f"build_ml_ready(Lake({joined_lake.root!r}), SplitConfig(train=('2019-01', '2019-01'), validation=('2018-12', '2018-12'), "
               f"test=('2019-02', '2019-02')))")
    for stage, code, watched in (("join", join, joined_lake.path("joined")), ("dataset", dataset, joined_lake.path("ml"))):
        run_killed(code, point, watched)
        debris = find_debris(joined_lake)
        assert debris and not any(d.live for d in debris), (stage, debris)
        if point == "first-write":
            assert lake_outputs(joined_lake) == before, stage  # nothing published was touched
        _outputs_after(joined_lake, tiny_recipe_path)  # the rerun sweeps, then redoes the stage
        assert lake_outputs(joined_lake) == reference, stage
        assert_no_debris(joined_lake)


def _outputs_after(lake: Lake, recipe: Path) -> dict[str, bytes]:
    """Run both stages whole (join of 2019-01, the ML-ready set) and return the outputs."""
    join_month(lake, "2019-01", load_recipe(recipe).join)
    build_ml_ready(lake, SPLIT)
    return lake_outputs(lake)


def test_mlflow_runs_left_running_by_a_dead_process_are_marked_killed(tmp_path: Path) -> None:
    import mlflow

    from ml4l.ml.tracking import tracking_uri
    from ml4l.usecases.lst.train import CLAIM_TAG, kill_dead_runs

    lake = Lake.at(str(tmp_path))
    (tmp_path / "ml").mkdir()
    mlflow.set_tracking_uri(tracking_uri(lake))
    experiment = mlflow.create_experiment("robustness")
    code = (f"from ml4l.lake import Lake; import mlflow\nlake = Lake({lake.root!r}); mlflow.set_tracking_uri({tracking_uri(lake)!r})\n"
            f"with lake.claim('dead00000005'), mlflow.start_run(experiment_id={experiment!r}, tags={{{CLAIM_TAG!r}: 'dead00000005'}}):\n"
            f"    open({str(tmp_path / 'ml' / 'x')!r}, 'w')")
    run_killed(code, "first-write", str(tmp_path / "ml"))
    client = mlflow.MlflowClient()
    with lake.claim("live00000006"):
        alive = client.create_run(experiment, tags={CLAIM_TAG: "live00000006"}).info.run_id
        foreign = client.create_run(experiment).info.run_id  # not ours: no claim tag
        killed = kill_dead_runs(lake, experiment)
        assert len(killed) == 1 and client.get_run(killed[0]).info.status == "KILLED"
        assert client.get_run(alive).info.status == "RUNNING" and client.get_run(foreign).info.status == "RUNNING"
    assert kill_dead_runs(lake, experiment) == [alive]
