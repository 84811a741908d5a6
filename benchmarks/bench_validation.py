"""Time the Great Expectations validation of a full-size joined month against the join itself.

A joined month at full size is built from one 1/30-degree MODIS hour joined to N320
(nearest + group-by, as in ``bench_join.py``), repeated for every hour of a 31-day month
with in-range features, in the joined schema. Printed side by side in one run: the
``joined_month`` suite's validation (``ml4l.quality.validate``, Data Docs included), and
the join's compute for the same month (nearest + threshold + group-by per hour, times
the month's hours), median of ``--repeats``.

With ``--stored 10 100 1000``: the cost of one validation (a small ``joined_month`` table, its
Data Docs page included) when the site already holds 10, 100, 1000 results, median of
``--repeats``, beside the once-per-flow-run rebuild of the index (``refresh_docs``). It
should stay flat: only the index grows with the stored results.

    .venv/bin/python -m benchmarks.bench_validation
    .venv/bin/python -m benchmarks.bench_validation --stored 10 100 1000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import pandas as pd

from benchmarks.bench_join import modis_hour
from ml4l.grids import grid
from ml4l.join import FEATURE_COLUMNS, joined_schema, reduce_pixels
from ml4l.lake import Lake
from ml4l.nearest import nearest
from ml4l.quality import joined_month_parameters, load_suite, refresh_docs, validate

HOURS = 31 * 24


def feature_value(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Values inside the suite's declared range of ``name``."""
    bounds = {e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
              for e in load_suite("joined_month")["expectations"] if e["name"] == f"{name}_in_range"}
    low, high = bounds[name]
    return rng.uniform(low, low + 0.9 * (high - low), size).astype(np.float32)


def joined_month(hour_rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    g = grid("N320")
    n = len(hour_rows)
    start = pd.Timestamp("2019-01-01")
    times = np.repeat(pd.date_range(start, periods=HOURS, freq="h").values, n)
    cells = np.tile(hour_rows["cell"].to_numpy(), HOURS)
    count = np.tile(hour_rows["lst_count"].to_numpy(), HOURS)
    size = times.size
    table = pd.DataFrame({
        "time": times.astype("datetime64[ns]"),
        "cell": cells.astype(np.int32),
        "latitude": g.lat[cells],
        "longitude": g.lon[cells],
        "lst": rng.normal(290, 10, size).astype(np.float32),
        "lst_count": count.astype(np.int32),
        "lst_std": rng.uniform(0, 3, size).astype(np.float32),
        "distance_km": rng.uniform(0, 25, size).astype(np.float32),
        **{name: feature_value(name, size, rng) for name in FEATURE_COLUMNS},
    })
    assert list(table.columns) == joined_schema().names
    return table


def store_copies(lake: Lake, dataset: str, template_key: str, keys: list[str]) -> None:
    """Store, for each of ``keys``, what a validation of it leaves: its batch, validation definition,
    checkpoint, result and page, copied from the stored validation of ``template_key``.

    Running 1000 real validations to fill the site takes longer than this 2-core machine has;
    the state they would leave is written directly, with GX's own stores.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    from ml4l.quality import _context

    context = _context(lake)
    asset = context.data_sources.get("ml4l").get_asset(dataset)
    suite = context.suites.get(dataset)
    template_id = next(k for k in context.validation_results_store.list_keys() if k.run_id.run_name == f"{dataset}-{template_key}")
    template = context.validation_results_store.get(template_id)
    stored = []
    for key in keys:
        batch = asset.add_batch_definition_whole_dataframe(key)
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=f"{dataset} {key}", data=batch, suite=suite))
        context.checkpoints.add(gx.Checkpoint(name=f"{dataset} {key}", validation_definitions=[definition], actions=[], result_format="SUMMARY"))
        run_id = RunIdentifier(run_name=f"{dataset}-{key}", run_time=pd.Timestamp.now(tz="UTC").to_pydatetime())
        identifier = ValidationResultIdentifier(template_id.expectation_suite_identifier, run_id, template_id.batch_identifier)
        template.meta["run_id"] = run_id
        context.validation_results_store.set(identifier, template)
        stored.append(identifier)
    context.build_data_docs(resource_identifiers=stored, build_index=False)


def cost_as_results_grow(stored: list[int], repeats: int) -> None:
    """Per-validation cost at each count of stored results, and the index rebuild's."""
    rng = np.random.default_rng(0)
    table = joined_month(pd.DataFrame({"cell": [0, 1], "lst_count": [1, 1]}), rng)  # two cells: a small month
    parameters = joined_month_parameters(50.0)
    print(f"one joined_month validation ({len(table)} rows, {len(load_suite('joined_month')['expectations'])} expectations, its page "
          f"included) with N results already stored (each a month of its own); median of {repeats}")
    print(f"  {'stored results':>14} {'per validation (s)':>19} {'index rebuild (s)':>18}")
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        outcome = validate(lake, "joined_month", "template", table, parameters)
        assert outcome.success, outcome.summary()
        done = 1
        for target in sorted(stored):
            store_copies(lake, "joined_month", "template", [f"fill-{k:05d}" for k in range(done, target)])
            done = max(done, target)
            times = []
            for k in range(repeats):
                t = time.perf_counter()
                validate(lake, "joined_month", f"timed-{target}-{k}", table, parameters)
                times.append(time.perf_counter() - t)
            done += repeats
            t = time.perf_counter()
            refresh_docs(lake)
            index = time.perf_counter() - t
            print(f"  {target:>14} {statistics.median(times):>19.3f} {index:>18.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stored", type=int, nargs="+", default=None, metavar="N",
                        help="time one validation with N results already stored (e.g. 10 100 1000) instead")
    args = parser.parse_args()
    if args.stored:
        cost_as_results_grow(args.stored, args.repeats)
        return
    rng = np.random.default_rng(0)
    lat, lon, lst, utc = modis_hour(1 / 30)
    g = grid("N320")
    hour = np.floor(utc + 0.5).astype(np.int64)

    def join_hour() -> pd.DataFrame:
        cell, distance = nearest(g, lat, lon, "grid")
        close = distance <= 50.0
        return reduce_pixels(hour[close], cell[close], lst[close], distance[close], g.size)

    hour_rows = join_hour()
    join_times = []
    for _ in range(max(args.repeats, 5)):
        t = time.perf_counter()
        join_hour()
        join_times.append(time.perf_counter() - t)
    table = joined_month(hour_rows, rng)
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        validate(lake, "joined_month", "warm-up", table.iloc[:1000], joined_month_parameters(50.0))
        times = []
        for k in range(args.repeats):
            t = time.perf_counter()
            outcome = validate(lake, "joined_month", f"2019-01-run{k}", table, joined_month_parameters(50.0))
            times.append(time.perf_counter() - t)
        assert outcome.success, outcome.summary()
    validation = statistics.median(times)
    join_compute = statistics.median(join_times) * HOURS
    print(f"joined month at full size: N320, {HOURS} hours, {len(table):,} rows x {table.shape[1]} columns, "
          f"{len(load_suite('joined_month')['expectations'])} expectations")
    print(f"  {'step':<52} {'seconds':>9}")
    print(f"  {'join compute (nearest+threshold+group-by) x ' + str(HOURS) + ' h':<52} {join_compute:>9.1f}")
    print(f"  {'GX validation of the month (with Data Docs)':<52} {validation:>9.1f}")
    print(f"  validation / join compute: {validation / join_compute:.2f}  (median of {args.repeats})")


if __name__ == "__main__":
    main()
