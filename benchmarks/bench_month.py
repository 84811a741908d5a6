"""A month at full size, stage by stage: wall and CPU time, peak memory, bytes read and written, throughput.

The inputs are the ``full`` recipe's (N320 hourly GRIB of seed 000's 15 variables,
daily 1/30-degree MODIS GeoTIFFs of 5400 x 10800), with ``period.days`` set by
``--days``; they are generated day by day on every core
(:func:`ml4l.usecases.lst.sample.write_month_in_parallel`) and kept with the lake (``--lake``),
so a second run reuses them. Then, each stage in a fresh process so that its peak
RSS is its own:

==================== ==========================================================
ingest constants     V15/V20 climate, lake cover, saline lakes into Zarr
validate ERA month   ``era_month`` suite, decoded a few messages at a time
ingest ERA month     the month's GRIB into the Zarr time-variable store
validate MODIS days  ``modis_day`` suite per day, on witness rows and a sample
join                 MODIS days, at most ``ML4L_THREADS`` (else the cores) at once
validate joined      ``joined_month`` suite, on witness rows and a sample
dataset, train       with ``--months 3`` (the recipe's split is by month:
                     train 2019-01, validation 2019-02, test 2019-03)
==================== ==========================================================

Bytes are the process's ``rchar``/``wchar`` (``/proc/self/io``: every read and write
call, page cache included); CPU is the stage's and its worker processes'; ``load`` is the
machine's one-minute load average as the stage ended (the machine may be shared).
``--scaling 1 2 4 8`` runs ingest and join at each number of days and plots time and peak
memory against days (``--plot``). ``--generate-only`` writes the inputs and stops.

    .venv/bin/python -m benchmarks.bench_month --days 1
    .venv/bin/python -m benchmarks.bench_month --days 31 --lake /data/bench-month
    .venv/bin/python -m benchmarks.bench_month --scaling 1 2 4 8 --plot benchmarks/scaling.png
    # a small, quick check of the machinery:
    .venv/bin/python -m benchmarks.bench_month --days 1 --grid O96 --modis-resolution 0.25
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

MONTHS = ("2019-01", "2019-02", "2019-03")
PIPELINE = ("ingest constants", "validate ERA month", "ingest ERA month", "validate MODIS days", "join", "validate joined")
TRAINING = ("dataset", "train")


def bench_recipe(lake_root: str, days: int, grid: str, modis_resolution: float, months: int) -> str:
    """The ``full`` recipe with this run's days, grid, MODIS resolution and months, written into the lake."""
    data = yaml.safe_load(resources.files("ml4l.recipes").joinpath("full.yaml").read_text())
    data["period"] = {"start": MONTHS[0], "end": MONTHS[months - 1], "days": days}
    data["grid"] = grid
    data["sample"]["modis_resolution"] = modis_resolution
    path = Path(lake_root) / "bench-recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _io() -> dict[str, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {"read": int(fields["rchar"]), "written": int(fields["wchar"])}


# ---- the stages, each run in its own process ----


def run_stage(stage: str, recipe_path: str, lake_root: str, month: str, epochs: int) -> tuple[float, str]:
    """Do ``stage``; returns its work as (amount, unit) for the throughput."""
    from ml4l import era_store, join, quality
    from ml4l.config import load_recipe
    from ml4l.lake import Lake
    from ml4l.threads import configure, cores_given

    configure()
    recipe = load_recipe(recipe_path)
    lake = Lake(lake_root)
    hours = len(recipe.period.hours_of(month))
    if stage == "generate":
        from ml4l.usecases.lst.sample import write_month_in_parallel

        constants = not (Path(lake_root) / "raw").exists() or month == MONTHS[0]
        write_month_in_parallel(recipe, lake, month, constants=constants, progress=lambda done: print(f"  generated {done}", flush=True))
        return len(recipe.period.days_of(month)), "days"
    if stage == "ingest constants":
        era_store.create_timevar_store(lake, recipe.grid, recipe.period)
        era_store.ingest_constants(lake)
        return 1, "stores"
    if stage == "validate ERA month":
        table = quality.era_month_table(lake, month)
        outcome = quality.validate(lake, "era_month", month, table, quality.era_month_parameters(recipe.grid, hours))
        assert outcome.success, outcome.summary()
        return len(table), "fields"
    if stage == "ingest ERA month":
        era_store.ingest_month(lake, month)
        return hours * 15, "fields"
    if stage == "validate MODIS days":
        from ml4l.readers.modis.folder import read_day, scan_folder

        folder, pixels = scan_folder(lake), 0
        for day in join.month_days(lake, month):
            found = read_day(lake, day, recipe.join.max_lst_error_k, folder) if folder.holds(day) else None
            if found is None:
                continue
            table = quality.modis_day_table(found.parts)
            outcome = quality.validate(lake, "modis_day", day, table, quality.modis_day_parameters(recipe.join.max_lst_error_k))
            assert outcome.success, outcome.summary()
            pixels += sum(int(part["lst"].size) for part in found.parts)
            del found, table
        return pixels / 1e6, "M pixels"
    if stage == "join":
        join.sweep_month(lake, month)
        with lake.claim(uuid.uuid4().hex[:12]) as run:
            staging = join.staging_path(lake, month, run)
            counts = join.JoinCounts()
            try:  # the pool runs at most cores_given() days at once, as the join flow does
                with ThreadPoolExecutor(max_workers=cores_given()) as pool:
                    for found in pool.map(lambda day: join.join_day(lake, day, month, staging, recipe.join), join.month_days(lake, month)):
                        counts.add(found)
                join.finalize_month(lake, month, staging, counts, None)
            finally:
                join.discard_staging(lake, staging)
        return counts.observed / 1e6, "M pixels"
    if stage == "validate joined":
        table = join.read_joined(lake, month)
        outcome = quality.validate(lake, "joined_month", month, table, quality.joined_month_parameters(recipe.join.threshold_km))
        assert outcome.success, outcome.summary()
        return len(table) / 1e6, "M rows"
    if stage == "dataset":
        from ml4l.usecases.lst.dataset import build_ml_ready

        assert recipe.split is not None, "the recipe has no split"
        built = build_ml_ready(lake, recipe.split)
        return sum(built.rows.values()) / 1e6, "M rows"
    if stage == "train":
        import dataclasses

        from ml4l.usecases.lst.train import train_and_log

        assert recipe.train is not None
        config = dataclasses.replace(recipe.train, epochs=epochs, patience=epochs)
        result = train_and_log(lake, config=config, model_name="bench-month")
        return float(result.metrics["epochs_trained"]), "epochs"
    raise ValueError(f"unknown stage {stage!r}")


def stage_main(stage: str, recipe_path: str, lake_root: str, month: str, epochs: int) -> None:
    before_io, wall = _io(), time.perf_counter()
    amount, unit = run_stage(stage, recipe_path, lake_root, month, epochs)
    wall = time.perf_counter() - wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # generation's worker processes
    after_io = _io()
    print(json.dumps({
        "stage": stage, "month": month, "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime,
        "peak_rss_gb": max(usage.ru_maxrss, children.ru_maxrss) / 2**20,
        "read_gb": (after_io["read"] - before_io["read"]) / 2**30, "written_gb": (after_io["written"] - before_io["written"]) / 2**30,
        "amount": amount, "unit": unit, "load": os.getloadavg()[0],
    }))


def in_process(stage: str, recipe_path: str, lake_root: str, month: str, epochs: int = 2) -> dict[str, Any]:
    """Run ``stage`` in a fresh Python process; its figures."""
    command = [sys.executable, "-m", "benchmarks.bench_month", "--stage", stage, "--recipe", recipe_path,
               "--lake", lake_root, "--month", month, "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(title)
    print(f"| {'stage':<20} | {'wall s':>7} | {'CPU s':>7} | {'peak RSS GB':>11} | {'read GB':>8} | {'written GB':>10} "
          "| throughput | load |")
    print(f"|{'-' * 22}|{'-' * 9}|{'-' * 9}|{'-' * 13}|{'-' * 10}|{'-' * 12}|------------|------|")
    for row in rows:
        rate = row["amount"] / row["wall_s"] if row["wall_s"] > 0 else float("nan")
        print(f"| {row['stage']:<20} | {row['wall_s']:>7.1f} | {row['cpu_s']:>7.1f} | {row['peak_rss_gb']:>11.2f} | {row['read_gb']:>8.2f} "
              f"| {row['written_gb']:>10.2f} | {rate:,.2f} {row['unit']}/s | {row.get('load', float('nan')):.1f} |")
    stages = [r for r in rows if r["stage"] != "generate"]
    if stages:
        print(f"| {'total (no generate)':<20} | {sum(r['wall_s'] for r in stages):>7.1f} | {sum(r['cpu_s'] for r in stages):>7.1f} "
              f"| {max(r['peak_rss_gb'] for r in stages):>11.2f} | {sum(r['read_gb'] for r in stages):>8.2f} "
              f"| {sum(r['written_gb'] for r in stages):>10.2f} | | |")


def month_run(args: argparse.Namespace, days: int, lake_root: str, stages: tuple[str, ...]) -> list[dict[str, Any]]:
    """Generate (unless kept) and run ``stages`` for the months asked; one row per stage and month."""
    recipe_path = bench_recipe(lake_root, days, args.grid, args.modis_resolution, args.months)
    marker = Path(lake_root) / "bench-inputs.json"
    wanted = {"days": days, "grid": args.grid, "modis_resolution": args.modis_resolution, "months": args.months}
    rows = []
    if not marker.is_file() or json.loads(marker.read_text()) != wanted:
        for month in MONTHS[: args.months]:
            rows.append(in_process("generate", recipe_path, lake_root, month))
        marker.write_text(json.dumps(wanted))
    else:
        print(f"inputs kept in {lake_root} reused")
    for stage in stages:
        for month in MONTHS[: args.months] if stage not in ("ingest constants", *TRAINING) else MONTHS[:1]:
            row = in_process(stage, recipe_path, lake_root, month, args.epochs)
            rows.append(row | {"stage": stage if args.months == 1 or stage in TRAINING else f"{stage} {month[5:]}"})
            print(f"  {row['stage']}: {row['wall_s']:.1f} s, {row['peak_rss_gb']:.2f} GB", flush=True)
    return rows


def scaling(args: argparse.Namespace) -> None:
    results = {}
    for days in args.scaling:
        lake_root = f"{args.lake}-{days}d"
        rows = month_run(args, days, lake_root, ("ingest constants", "validate ERA month", "ingest ERA month", "join"))
        results[days] = {r["stage"]: r for r in rows}
        print_table(f"\n{days} days", rows)
    stages = ("ingest ERA month", "join")
    print("\n| days | " + " | ".join(f"{s} wall s | CPU s | peak RSS GB" for s in stages) + " |")
    for days, found in results.items():
        print(f"| {days} | " + " | ".join(f"{found[s]['wall_s']:.1f} | {found[s]['cpu_s']:.1f} | {found[s]['peak_rss_gb']:.2f}"
                                         for s in stages) + " |")
    if args.plot:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(9, 3.5))
        cost, memory = figure.subplots(1, 2)
        xs = list(results)
        for stage, colour in zip(stages, ("tab:blue", "tab:orange"), strict=True):
            cost.plot(xs, [results[d][stage]["cpu_s"] for d in xs], "o-", color=colour, label=f"{stage}, CPU")
            cost.plot(xs, [results[d][stage]["wall_s"] for d in xs], "o:", color=colour, label=f"{stage}, wall")
            memory.plot(xs, [results[d][stage]["peak_rss_gb"] for d in xs], "o-", color=colour, label=stage)
        cost.set(xlabel="days", ylabel="seconds", title="cost against days", xticks=xs)
        memory.set(xlabel="days", ylabel="peak RSS GB", title="memory against days", ylim=(0, None), xticks=xs)
        cost.legend(fontsize="small")
        memory.legend(fontsize="small")
        figure.suptitle(f"bench_month --scaling: {args.grid}, MODIS {args.modis_resolution:.4g} deg", fontsize="medium")
        figure.tight_layout()
        figure.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--months", type=int, choices=(1, 3), default=1, help="3: also build the ML-ready set and train")
    parser.add_argument("--grid", default="N320")
    parser.add_argument("--modis-resolution", type=float, default=1 / 30)
    parser.add_argument("--lake", default="/tmp/ml4l-bench-month", help="kept: its inputs are reused by the next run")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (time per epoch is printed)")
    parser.add_argument("--scaling", type=int, nargs="+", metavar="DAYS", help="ingest and join at these numbers of days")
    parser.add_argument("--plot", help="PNG of the scaling run")
    parser.add_argument("--generate-only", action="store_true", help="write the inputs into --lake and stop (time the stages later)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--recipe", help=argparse.SUPPRESS)
    parser.add_argument("--month", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        stage_main(args.stage, args.recipe, args.lake, args.month, args.epochs)
        return
    if args.scaling:
        scaling(args)
        return
    stages = () if args.generate_only else PIPELINE + (TRAINING if args.months == 3 else ())
    rows = month_run(args, args.days, args.lake, stages)
    print_table(f"\nbench_month: {args.days} days x {args.months} month(s), {args.grid}, MODIS {args.modis_resolution:.4g} deg", rows)
    trained = [r for r in rows if r["stage"] == "train"]
    if trained:
        print(f"time per epoch: {trained[0]['wall_s'] / trained[0]['amount']:.1f} s (set-up and evaluation included)")
    else:
        print("dataset, train: not run (the recipe's split is by month; --months 3 generates and joins 2019-01..03)")


if __name__ == "__main__":
    main()
