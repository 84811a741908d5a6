"""Tiles flows (seed 003): ``tiles-build``, ``tiles-retry-failed`` and the demo that runs the use case end to end."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import flow
from prefect.futures import wait

from blocks.lake import resolve_lake
from blocks.mlflow import resolve_tracking
from ml4l.usecases.tiles.recipe import load_recipe
from tasks import tiles


@flow(name="tiles-build", log_prints=True)
def tiles_build_flow(
    recipe: str | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, Any]:
    """Read, check and commit every pending tile (Dask tasks), then write the HDF5, band statistics, splits and tile_info.

    ``recipe`` is a YAML path (``None``: the defaults); it is loaded once and passed by value. A killed
    build run again resumes from the ledger.
    """
    lake = resolve_lake(lake_root, lake_block)
    spec = load_recipe(recipe)
    report = tiles.build(lake.root, spec)
    counts = report["counts"]
    print(
        f"{report['tiles_written']} tiles in {report['hdf5']}; ledger: {counts['done']} done, {counts['failed']} failed, {counts['pending']} pending"
    )
    return report


@flow(name="tiles-retry-failed", log_prints=True)
def tiles_retry_failed_flow(
    recipe: str | None = None, lake_root: str | None = None, lake_block: str | None = None
) -> dict[str, Any]:
    """Retry only the ledger's failed tiles, each up to ``retry.max_attempts`` times with exponential backoff while its
    failure is transient (a missing or unreadable download); then write the HDF5 again if any tile recovered."""
    lake = resolve_lake(lake_root, lake_block)
    spec = load_recipe(recipe)
    failed = tiles.failed_tiles(lake.root, spec)
    delays = [spec.retry.base_delay_s * 2**k for k in range(spec.retry.max_attempts - 1)]
    attempt = tiles.retry_tile.with_options(retries=spec.retry.max_attempts - 1, retry_delay_seconds=delays)
    futures = {tile: attempt.submit(lake.root, spec, tile) for tile in failed}
    wait(list(futures.values()))
    recovered = [tile for tile, future in futures.items() if future.state.is_completed()]
    report = tiles.assemble(lake.root, spec) if recovered else None
    still = {
        row["tile_id"]: {"reason": row["reason"], "attempts": row["attempts"]}
        for row in tiles.ledger_table(lake.root, spec)
        if row["state"] == "failed"
    }
    print(f"retried {len(failed)} failed tiles: {len(recovered)} recovered, {len(still)} still failed")
    for tile, row in still.items():
        print(f"  {tile} after {row['attempts']} attempts: {row['reason']}")
    return {"retried": failed, "recovered": recovered, "still_failed": still, "build": report}


@flow(name="tiles-demo", log_prints=True)
def tiles_demo_flow(lake_root: str | None = None) -> dict[str, Any]:
    """Sample tiles, build, let the late downloads arrive, retry the failed tiles, train; metrics, outputs and MLflow run."""
    lake = resolve_lake(lake_root, None)
    spec = load_recipe(None)
    uri, _ = resolve_tracking(lake, None)
    written = tiles.write_sample(lake.root, spec)
    built = tiles_build_flow(lake_root=lake.root)
    tiles.deliver_late(lake.root, spec)
    retried = tiles_retry_failed_flow(lake_root=lake.root)
    trained = tiles.train(lake.root, spec, uri)
    products = retried["build"] or built
    counts = Counter(row["state"] for row in tiles.ledger_table(lake.root, spec))
    print(f"tiles: {counts['done']} in the HDF5, {counts['failed']} failed with a reason in the ledger")
    return {
        "metrics": trained["metrics"],
        "outputs": {
            "geojson": written["geojson"],
            **{k: products[k] for k in ("hdf5", "band_stats", "splits", "tile_info", "ledger")},
        },
        "run_id": trained["run_id"],
        "ledger": dict(counts),
        "retry": {"recovered": retried["recovered"], "still_failed": retried["still_failed"]},
    }
