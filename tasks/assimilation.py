"""Tasks of the assimilation use case: thin wrappers over ``ml4l.usecases.assimilation.pipeline``."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from ml4l.lake import Lake
from ml4l.usecases.assimilation import pipeline
from ml4l.usecases.assimilation.recipe import AssimilationRecipe
from tasks.retry import IO_TASK_OPTIONS


@task(name="da-write-inputs", tags=["assimilation", "io"], **IO_TASK_OPTIONS)
def write_inputs(lake_root: str, recipe: AssimilationRecipe) -> dict[str, str]:
    """Synthetic anomaly fields, stations and pseudo-observations into ``da/``; returns their paths."""
    paths = pipeline.write_inputs(Lake(lake_root), recipe)
    return {"fields": paths.fields, "stations": paths.stations, "observations": paths.observations}


@task(name="da-validate-inputs", tags=["assimilation", "quality"], **IO_TASK_OPTIONS)
def validate_inputs(lake_root: str, observations: str | None = None, fields: bool = True) -> list[str]:
    """The ``da_observations`` suite and, if ``fields``, ``da_fields``; a failure quarantines and fails without retry."""
    return [o.summary() for o in pipeline.validate_inputs(Lake(lake_root), observations, fields)]


@task(name="da-train-and-score", tags=["assimilation", "ml"])
def train_and_score(lake_root: str, recipe: AssimilationRecipe, tracking_uri: str | None = None) -> dict[str, Any]:
    """Train the VAE and score it on the test days against the baselines (MLflow ``ml4l-assimilation``)."""
    result = pipeline.train_and_score(Lake(lake_root), recipe, tracking_uri)
    m = result["metrics"]
    create_table_artifact(
        key="da-scores",
        table=[{"estimate": name, "test_rmse_K": round(m[key], 4)} for name, key in
               (("VAE ensemble mean", "test_rmse"), ("oracle", "oracle_test_rmse"), ("climatology", "baseline_climatology_test_rmse"),
                ("PCA", "baseline_pca_test_rmse"), ("OI", "baseline_oi_test_rmse"))],
        description=f"spread/skill {m['spread_skill_ratio']:.3f}, rank-histogram p {m['rank_histogram_chi2_pvalue']:.3g}, "
                    f"CRPS {m['test_crps']:.3f} K, gap closed {m['gap_closed']:.3f}",
    )
    return result


@task(name="da-assimilate", tags=["assimilation", "io"], task_run_name="da-assimilate-{start}..{end}", **IO_TASK_OPTIONS)
def assimilate(lake_root: str, recipe: AssimilationRecipe, start: str, end: str, observations: str | None = None) -> str:
    """The analysis of the days from ``start`` to ``end``: ``da/<model>/analysis.zarr``."""
    return pipeline.assimilate_range(Lake(lake_root), recipe, start, end, observations)
