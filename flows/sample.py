"""Flow that writes the sample inputs of a recipe into the lake."""

from __future__ import annotations

from prefect import flow

from blocks.lake import resolve_lake
from flows.common import MonthParameter, months_of, settle
from tasks.sample import sample_constants, sample_month


@flow(name="ml4l-sample", log_prints=True)
def sample_flow(
    recipe: str = "demo", months: list[MonthParameter] | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> str:
    """Write ERA GRIB (constants and months) and MODIS days for ``recipe``; returns the lake root."""
    lake = resolve_lake(lake_root, lake_block)
    futures = {"constants": sample_constants.submit(lake.root, recipe)}
    for month in months_of(recipe, months):
        futures[month] = sample_month.submit(lake.root, recipe, month)
    settle(futures)
    print(f"sample inputs written under {lake.raw}")
    return lake.root
