"""Gap-filling tasks: thin wrappers of ``ml4l.usecases.gapfill.workflow``; paths and the recipe pass between them."""

from __future__ import annotations

from typing import Any

from prefect import task

from ml4l.lake import Lake
from ml4l.usecases.gapfill import workflow
from ml4l.usecases.gapfill.cube import DATASET, cube_table
from ml4l.usecases.gapfill.recipe import GapfillRecipe
from tasks.quality import VALIDATION_TASK_OPTIONS, gate
from tasks.retry import IO_TASK_OPTIONS


@task(name="gapfill-cube", tags=["gapfill", "io"], task_run_name="gapfill-cube-{recipe.cube.name}", **IO_TASK_OPTIONS)
def prepare_cube(lake_root: str, recipe: GapfillRecipe) -> str:
    """The cube's path: the sample cube (written unless there for this cube recipe) or one built from the lake."""
    return workflow.ensure_cube(Lake(lake_root), recipe)


@task(
    name="validate-gapfill-cube",
    tags=["gapfill", "quality"],
    task_run_name="validate-cube-{key}",
    **VALIDATION_TASK_OPTIONS,
)
def validate_cube(lake_root: str, cube_path: str, key: str) -> dict[str, Any]:
    """The ``gapfill_cube`` suite; a failing or unreadable cube is quarantined as ``gapfill_cube/<key>``, and raises."""
    lake = Lake(lake_root)
    return gate(lake, DATASET, key, lambda: (cube_table(lake, cube_path), {}))


@task(name="gapfill-train", tags=["gapfill", "ml", "train"], task_run_name="gapfill-train-{recipe.name}")
def train(lake_root: str, recipe: GapfillRecipe, cube_path: str, tracking_uri: str) -> dict[str, Any]:
    """Split, fit, evaluate, log to ``ml4l-gapfill``, save the models. Not retried: a failed fit repeats itself."""
    return workflow.train(Lake(lake_root), recipe, cube_path, tracking_uri).to_dict()


@task(name="gapfill-fill", tags=["gapfill", "io"], task_run_name="gapfill-fill-{recipe.fill.model}")
def fill(lake_root: str, recipe: GapfillRecipe, cube_path: str) -> dict[str, Any]:
    """Write ``gapfill/<model>/lst_filled.zarr`` (swapped in whole, so a re-run is safe)."""
    return workflow.fill(Lake(lake_root), recipe, cube_path).to_dict()
