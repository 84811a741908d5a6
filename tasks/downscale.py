"""Tasks of the downscaling use case (seed 002): thin wrappers that pass the lake root and the recipe."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from ml4l.lake import Lake
from ml4l.usecases.downscale import dataset, inputs, model, sample
from ml4l.usecases.downscale.layout import DownscaleLake
from ml4l.usecases.downscale.recipe import DownscaleRecipe, SplitKind
from tasks.retry import IO_TASK_OPTIONS


@task(name="downscale-sample", tags=["downscale", "sample", "io"], **IO_TASK_OPTIONS)
def write_sample(lake_root: str, recipe: DownscaleRecipe) -> dict[str, str]:
    """Write the sample LST NetCDF, DEM GeoTIFF and noise-free truth; returns their paths."""
    return sample.generate(Lake(lake_root), recipe.sample)


@task(
    name="downscale-check-inputs", tags=["downscale", "quality"], retries=0
)  # a failed check is bad data: never retried
def check_inputs(lake_root: str, recipe: DownscaleRecipe) -> dict[str, Any]:
    """Grid alignment, units, QA band and the ``downscale_inputs`` suite; a failure is quarantined."""
    return inputs.check_inputs(Lake(lake_root), recipe.sample.year)


@task(name="downscale-build-dataset", tags=["downscale", "ml", "io"], **IO_TASK_OPTIONS)
def build_dataset(lake_root: str, recipe: DownscaleRecipe) -> dict[str, Any]:
    """Patches, splits and train-only scalers under ``downscale/datasets/<name>/``; returns its summary."""
    lake = Lake(lake_root)
    manifest = dataset.build_dataset(lake, recipe)
    create_table_artifact(
        key=f"downscale-dataset-{recipe.name}".lower().replace("_", "-").replace(".", "-"),
        table=[{"split": kind, **counts} for kind, counts in manifest["splits"].items()],
        description=f"{sum(s['rows'] for s in manifest['shards'])} patches of {len(manifest['shards'])} days",
    )
    return {
        "directory": DownscaleLake(lake).dataset(recipe.name),
        "rows": sum(s["rows"] for s in manifest["shards"]),
        "days": len(manifest["shards"]),
        "splits": manifest["splits"],
    }


@task(name="downscale-train", tags=["downscale", "ml", "train"])
def train(lake_root: str, recipe: DownscaleRecipe, split: SplitKind, tracking_uri: str) -> dict[str, Any]:
    """Train the seed's MLP on one split and score it once on test; returns the metrics and run id."""
    outcome = model.train(Lake(lake_root), recipe, split, tracking_uri)
    return {
        "metrics": outcome.metrics,
        "run_id": outcome.run_id,
        "lapse_rates": outcome.lapse_rates,
        "best_epoch": outcome.best_epoch,
        "split": split,
        "split_hash": outcome.split_hash,
    }
