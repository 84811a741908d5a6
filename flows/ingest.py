"""ERA ingest flow: GRIB to the Zarr stores, mapped over months."""

from __future__ import annotations

from prefect import flow
from prefect.futures import PrefectFuture, wait

from blocks.lake import resolve_lake
from flows.common import DOCS_HOOKS, MonthParameter, months_of, settle
from tasks.era import create_store, ingest_constants, ingest_month, withdraw_month
from tasks.quality import validate_era_month


@flow(name="ml4l-ingest", log_prints=True, **DOCS_HOOKS)
def ingest_flow(
    recipe: str = "demo",
    months: list[MonthParameter] | None = None,
    refresh_constants: bool = True,
    lake_root: str | None = None,
    lake_block: str | None = None,
) -> dict[str, str]:
    """Create the ERA store from the recipe's first month if needed, ingest the constants and every month.

    The store grows to take a month it does not reach yet. ``refresh_constants``
    False keeps an existing constants store (the monthly pipeline's choice). Each
    month's GRIB is validated first (suite ``expectations/era_month.yaml``); a
    month that fails is quarantined, withdrawn from the store's complete months and
    not ingested. A month that fails does not stop the others; the flow fails at
    the end, naming it.
    """
    lake = resolve_lake(lake_root, lake_block)
    store = create_store(lake.root, recipe)
    constants = ingest_constants.submit(lake.root, refresh_constants)
    # the ERA suite counts NaN over land, so the land mask goes in first
    checks = {m: validate_era_month.submit(lake.root, recipe, m, wait_for=[constants]) for m in months_of(recipe, months)}
    wait(list(checks.values()))
    futures: dict[str, PrefectFuture] = {"constants": constants}
    for month, check in checks.items():  # a quarantined month is not ingested; settle reports why
        if check.state.is_completed():
            futures[month] = ingest_month.submit(lake.root, month, store)
        else:
            withdraw_month(lake.root, month)
            futures[month] = check
    settle(futures)
    stores = {"timevar": lake.era_timevar, "constants": lake.era_constants}
    for name, path in stores.items():
        print(f"ERA {name} store: {path}")
    return stores
