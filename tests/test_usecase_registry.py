"""A use case defined here, in the tests (recipe, sample data, one flow), runs through the registry and ``ml4l demo --usecase``.

It is the smallest thing a new use case needs: a typed recipe with a ``kind``, seeded sample data written into the
lake, a flow that splits, fits, scores against a baseline and the noise-free truth with the shared metrics, logs to
MLflow and returns ``metrics`` and ``outputs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from prefect import flow
from pydantic import BaseModel, ConfigDict

from ml4l.lake import Lake
from ml4l.ml import splits
from ml4l.ml.metrics import named_metrics
from ml4l.ml.tracking import log_recipe, run

NOISE = 0.5


class LineRecipe(BaseModel):
    """The toy use case's recipe: ``y = slope * x + intercept + noise``, sampled over ``days`` days."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["line"] = "line"
    slope: float = 2.0
    intercept: float = 1.0
    days: int = 60
    samples_per_day: int = 20
    seed: int = 3


def write_sample(lake: Lake, recipe: LineRecipe) -> str:
    """Seeded sample data into the lake: ``time, x, truth, y`` (the truth without noise, kept for the oracle)."""
    rng = np.random.default_rng(recipe.seed)
    n = recipe.days * recipe.samples_per_day
    time = pd.Timestamp("2019-01-01") + pd.to_timedelta(np.repeat(np.arange(recipe.days), recipe.samples_per_day), unit="D")
    x = rng.uniform(-1, 1, n)
    truth = recipe.slope * x + recipe.intercept
    path = lake.path("line", "sample.parquet")
    lake.fs.makedirs(lake.path("line"), exist_ok=True)
    with lake.fs.open(path, "wb") as out:
        pd.DataFrame({"time": time, "x": x, "truth": truth, "y": truth + rng.normal(0, NOISE, n)}).to_parquet(out, index=False)
    return path


@flow(name="ml4l-line-demo")
def line_demo_flow(lake_root: str | None = None) -> dict[str, Any]:
    """Sample, split by time, fit a line on train, score it on test against the train mean and the truth."""
    lake, recipe = Lake.at(lake_root), LineRecipe()
    path = write_sample(lake, recipe)
    with lake.fs.open(path, "rb") as source:
        frame = pd.read_parquet(source)
    labels = splits.time_split(frame["time"].to_numpy(), ("2019-01-01", "2019-01-31"), ("2019-02-01", "2019-02-10"),
                               ("2019-02-11", "2019-03-01"))
    train, test = frame[labels == splits.TRAIN], frame[labels == splits.TEST]
    slope, intercept = np.polyfit(train["x"], train["y"], 1)
    metrics = named_metrics(test["y"], slope * test["x"] + intercept, {"mean": np.full(len(test), train["y"].mean())},
                            oracle=test["truth"])
    with run(lake, "ml4l-line") as active:
        log_recipe(recipe)
        import mlflow

        mlflow.log_param("split_hash", splits.split_hash(labels))
        mlflow.log_metrics(metrics)
    return {"metrics": metrics, "outputs": {"sample": path}, "run_id": active.info.run_id}


@pytest.mark.slow
def test_a_use_case_defined_in_the_tests_runs_through_the_registry_and_the_cli(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows import registry
    from flows.cli import main

    monkeypatch.setattr(registry, "USECASES", dict(registry.USECASES))  # the registration ends with the test
    registry.register("line", f"{__name__}:line_demo_flow")
    assert registry.load("line") is line_demo_flow

    assert main(["demo", "--usecase", "line", "--lake", str(tmp_path / "lake")]) == 0
    printed = capsys.readouterr().out
    assert "Use case line: test metrics (MLflow experiment ml4l-line" in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("  ")]
    shown = {row[0]: float(row[1]) for row in rows if len(row) == 2 and not row[0].endswith(":")}  # metrics; outputs are "name: path"
    assert f"sample: {tmp_path / 'lake' / 'line' / 'sample.parquet'}" in printed
    # a line fitted to ~600 noisy samples is within a few sigma/sqrt(n) of the truth: far better than the mean
    assert shown["test_mae"] < shown["baseline_mean_test_mae"]
    assert shown["oracle_test_rmse"] == pytest.approx(NOISE, rel=5 / np.sqrt(2 * 380))  # 19 test days of 20 samples
    assert shown["gap_closed"] > 0.9
    assert (tmp_path / "lake" / "line" / "sample.parquet").is_file()
