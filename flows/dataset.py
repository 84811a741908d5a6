"""ML-ready dataset flow: build the recipe's train/validation/test split from joined months, then validate it."""

from __future__ import annotations

from typing import Any

from prefect import flow

from blocks.lake import resolve_lake
from flows.common import NameParameter
from ml4l.config import load_recipe
from tasks.dataset import build_ml_ready


@flow(name="ml4l-dataset", log_prints=True)
def dataset_flow(
    recipe: str = "demo", name: NameParameter = "default", lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, Any]:
    """Build ``ml/<name>/``, validate it (``expectations/ml_ready.yaml``) and only then publish it; returns its summary.

    Quarantined joined months are refused; a set that fails validation is quarantined as ``ml_ready/<name>``
    and the previous set stays.
    """
    lake = resolve_lake(lake_root, lake_block).require()
    load_recipe(recipe)  # a bad recipe fails here, naming the file and field, before any work
    built = build_ml_ready(lake.root, recipe, name)
    print(f"ML-ready set {name}: {built['rows']} rows, {built['features']} features -> {built['directory']}")
    return built
