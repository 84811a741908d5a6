"""ERA ingest flow: GRIB to the Zarr stores, mapped over months."""

from __future__ import annotations

from prefect import flow
from prefect.futures import PrefectFuture, wait

from blocks.lake import resolve_lake
from flows.common import MonthParameter, months_of, settle
from tasks.era import create_store, ingest_constants, ingest_month
from tasks.quality import validate_era_month


@flow(name="ml4l-ingest", log_prints=True)
def ingest_flow(
    recipe: str = "demo",
    months: list[MonthParameter] | None = None,
    refresh_constants: bool = True,
    lake_root: str | None = None,
    lake_block: str | None = None,
) -> dict[str, str]:
    """Create the ERA store for the recipe's period if needed, ingest the constants and every month.

    ``refresh_constants`` False keeps an existing constants store (the monthly
    pipeline's choice). Each month's GRIB is validated first (suite ``expectations/era_month.yaml``); a month
    that fails is quarantined and not ingested. A month that fails does not stop the
    others; the flow fails at the end, naming it.
    """
    lake = resolve_lake(lake_root, lake_block)
    store = create_store(lake.root, recipe)
    constants = ingest_constants.submit(lake.root, refresh_constants)
    # the ERA suite counts NaN over land, so the land mask goes in first
    checks = {m: validate_era_month.submit(lake.root, recipe, m, wait_for=[constants]) for m in months_of(recipe, months)}
    wait(list(checks.values()))
    futures: dict[str, PrefectFuture] = {"constants": constants}
    for month, check in checks.items():  # a quarantined month is not ingested; settle reports why
        futures[month] = ingest_month.submit(lake.root, month, store) if check.state.is_completed() else check
    settle(futures)
    stores = {"timevar": lake.era_timevar, "constants": lake.era_constants}
    for name, path in stores.items():
        print(f"ERA {name} store: {path}")
    return stores
