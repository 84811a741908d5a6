"""Tasks that build and validate an ML-ready set."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from ml4l import dataset
from ml4l.config import load_recipe
from ml4l.lake import Lake
from tasks.quality import VALIDATION_TASK_OPTIONS, gate
from tasks.retry import IO_TASK_OPTIONS


@task(name="build-ml-ready", tags=["ml", "io"], task_run_name="build-ml-ready-{name}", **IO_TASK_OPTIONS)
def build_ml_ready(lake_root: str, recipe: str, name: str) -> dict[str, Any]:
    """Build ``ml/<name>/`` from the recipe's split of the joined months; returns its summary."""
    split = load_recipe(recipe).split
    if split is None:
        raise ValueError(f"recipe {recipe!r} has no split section")
    ready = dataset.build_ml_ready(Lake(lake_root), split, name)
    create_table_artifact(
        key=f"ml-ready-{name}".lower().replace("_", "-"),
        table=[{"split": s, "months": ", ".join(ready.months[s]), "rows": ready.rows[s]} for s in dataset.SPLITS],
        description=f"ML-ready set {name}: {len(ready.features)} features, dropped as constant: {', '.join(ready.dropped_constant) or '-'}",
    )
    return {"directory": ready.directory, "rows": ready.rows, "months": ready.months, "features": len(ready.features)}


@task(name="validate-ml-ready", tags=["quality", "ml"], task_run_name="validate-ml-ready-{name}", **VALIDATION_TASK_OPTIONS)
def validate_ml_ready(lake_root: str, name: str) -> dict[str, Any]:
    """Validate an ML-ready set before training."""
    lake = Lake(lake_root)
    return gate(lake, "ml_ready", name, lambda: (dataset.ml_ready_table(lake, name), {}))
