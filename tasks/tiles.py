"""Tiles tasks (seed 003): thin wrappers of ``ml4l.usecases.tiles``; lake roots, paths, tile ids and the recipe pass between them."""

from __future__ import annotations

from typing import Any

from prefect import task

from ml4l.lake import Lake
from ml4l.usecases.tiles import build as tiles_build
from ml4l.usecases.tiles import model, sample
from ml4l.usecases.tiles.check import TileFailure
from ml4l.usecases.tiles.layout import TilesLake
from ml4l.usecases.tiles.ledger import FAILED, Ledger
from ml4l.usecases.tiles.recipe import TilesRecipe
from tasks.retry import IO_TASK_OPTIONS


@task(
    name="tiles-sample", tags=["tiles", "sample", "io"], task_run_name="tiles-sample-{recipe.name}", **IO_TASK_OPTIONS
)
def write_sample(lake_root: str, recipe: TilesRecipe) -> dict[str, Any]:
    """Write the tile GeoJSON, stacks and tile_info files (and the platform's ERA and MODIS if the lake has none)."""
    return sample.generate(Lake(lake_root), recipe).__dict__


@task(name="tiles-build", tags=["tiles", "io"], task_run_name="tiles-build-{recipe.name}", **IO_TASK_OPTIONS)
def build(lake_root: str, recipe: TilesRecipe) -> dict[str, Any]:
    """Prepare the pending tiles (Dask tasks), then write the HDF5 and its companions; a bad tile only fails itself."""
    return tiles_build.build(Lake(lake_root), recipe).to_dict()


@task(name="tiles-failed", tags=["tiles"])
def failed_tiles(lake_root: str, recipe: TilesRecipe) -> list[str]:
    """The tiles the ledger has as failed, in GeoJSON order."""
    return Ledger(TilesLake(Lake(lake_root), recipe.name).ledger).tiles_in(FAILED)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a tile only while its failure is transient (a missing or unreadable download); a failed check is final."""
    try:
        state.result()
    except TileFailure as failure:
        return failure.transient
    except Exception:  # noqa: BLE001  (anything else is a bug or bad configuration: fail at once)
        return False
    return False


@task(
    name="tiles-retry-tile",
    tags=["tiles", "io"],
    task_run_name="tiles-retry-{tile}",
    retry_condition_fn=retry_transient,
)
def retry_tile(lake_root: str, recipe: TilesRecipe, tile: str) -> str:
    """One more attempt at ``tile``; raises :class:`TileFailure` if it fails again (retried with backoff when transient)."""
    lake = Lake(lake_root)
    with lake.lock(TilesLake(lake, recipe.name).lock):
        failure = tiles_build.prepare(lake, recipe, [tile])[tile]
    if failure is not None:
        raise failure
    return tile


@task(name="tiles-assemble", tags=["tiles", "io"], task_run_name="tiles-assemble-{recipe.name}", **IO_TASK_OPTIONS)
def assemble(lake_root: str, recipe: TilesRecipe) -> dict[str, Any]:
    """Write the HDF5 and its companions from the done tiles (the one writer)."""
    lake = Lake(lake_root)
    with lake.lock(TilesLake(lake, recipe.name).lock):
        return tiles_build.assemble(lake, recipe).to_dict()


@task(name="tiles-deliver-late", tags=["tiles", "sample"])
def deliver_late(lake_root: str, recipe: TilesRecipe) -> list[str]:
    """The demo's re-download: the late tiles' files arrive in ``stacks/``."""
    return sample.deliver_late(Lake(lake_root), recipe)


@task(name="tiles-train", tags=["tiles", "ml", "train"], task_run_name="tiles-train-{recipe.name}")
def train(lake_root: str, recipe: TilesRecipe, tracking_uri: str) -> dict[str, Any]:
    """Fit the ridge model on the HDF5 and log it in ``ml4l-tiles``. Not retried: a failed fit repeats itself."""
    return model.train_and_evaluate(Lake(lake_root), recipe, tracking_uri).__dict__


def ledger_table(lake_root: str, recipe: TilesRecipe) -> list[dict[str, Any]]:
    """The ledger's rows, for the flows' summaries."""
    return Ledger(TilesLake(Lake(lake_root), recipe.name).ledger).table().to_dict("records")
