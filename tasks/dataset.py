"""Tasks that build and validate an ML-ready set."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from ml4l.usecases.lst import dataset
from ml4l.config import RecipeError, load_recipe
from ml4l.lake import Lake, retry_io
from tasks.quality import gate
from tasks.retry import IO_TASK_OPTIONS


@task(name="build-ml-ready", tags=["ml", "io"], task_run_name="build-ml-ready-{name}", **IO_TASK_OPTIONS)
def build_ml_ready(lake_root: str, recipe: str, name: str) -> dict[str, Any]:
    """Build ``ml/<name>/`` from the recipe's split of the joined months, validate it, and only then publish it.

    A set that fails the ``ml_ready`` suite is quarantined and kept at ``quarantine/ml_ready/<name>.rejected``;
    the published set stays as it was. Returns its summary.
    """
    split = load_recipe(recipe).split
    if split is None:
        raise RecipeError(recipe, "split: missing (the ML-ready set needs train, validation and test month ranges)")
    lake = Lake(lake_root)
    def check(staged: str) -> object:  # the suite on the new set under its hidden name, before it is published
        return retry_io(gate, lake, "ml_ready", name, lambda: (dataset.ml_ready_table(lake, staged), {}))

    ready = dataset.build_ml_ready(lake, split, name, check)
    create_table_artifact(
        key=f"ml-ready-{name}".lower().replace("_", "-"),
        table=[{"split": s, "months": ", ".join(ready.months[s]), "rows": ready.rows[s]} for s in dataset.SPLITS],
        description=f"ML-ready set {name}: {len(ready.features)} features, dropped as constant: {', '.join(ready.dropped_constant) or '-'}",
    )
    return {"directory": ready.directory, "rows": ready.rows, "months": ready.months, "features": len(ready.features)}
