"""Tasks that write sample inputs."""

from __future__ import annotations

from prefect import task

from ml4l.config import load_recipe
from ml4l.lake import Lake
from ml4l.usecases.lst.sample import SampleWriter
from ml4l.types import Month
from tasks.retry import IO_TASK_OPTIONS


@task(name="sample-era-constants", tags=["sample", "io"], **IO_TASK_OPTIONS)
def sample_constants(lake_root: str, recipe: str) -> list[str]:
    """Write the constant ERA files; returns their paths."""
    return SampleWriter(load_recipe(recipe), Lake(lake_root)).era_constants()


@task(name="sample-month", tags=["sample", "io"], task_run_name="sample-{month}", **IO_TASK_OPTIONS)
def sample_month(lake_root: str, recipe: str, month: Month) -> list[str]:
    """Write one month of ERA GRIB and its MODIS days; returns their paths."""
    return SampleWriter(load_recipe(recipe), Lake(lake_root)).month(month)
