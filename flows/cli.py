"""The ``ml4l`` command: runs each flow locally."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", default="demo", help="embedded recipe name (demo, full) or a YAML path [demo]")
    parser.add_argument("--lake", dest="lake_root", default=None, help="lake root, a path or fsspec URL [$ML4L_LAKE or ./lake]")
    parser.add_argument("--lake-block", default=None, help="name of a saved ml4l-lake-storage block")


def _months(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--month", dest="months", action="append", metavar="YYYY-MM", help="only this month (repeatable) [all of the recipe]")


def _run_sample(args: argparse.Namespace) -> Any:
    from flows.sample import sample_flow

    return sample_flow(recipe=args.recipe, months=args.months, lake_root=args.lake_root, lake_block=args.lake_block)


def _run_ingest(args: argparse.Namespace) -> Any:
    from flows.ingest import ingest_flow

    return ingest_flow(recipe=args.recipe, months=args.months, lake_root=args.lake_root, lake_block=args.lake_block)


def _run_join(args: argparse.Namespace) -> Any:
    from flows.join import join_flow

    summaries = join_flow(recipe=args.recipe, months=args.months, lake_root=args.lake_root, lake_block=args.lake_block)
    _print_join_summary(summaries)
    return summaries


def _print_join_summary(summaries: dict[str, dict[str, Any]]) -> None:
    print("\nERA x MODIS join:")
    print(f"  {'month':<8} {'rows':>8} {'pixels':>10} {'matched':>10} {'>threshold':>10} {'>lat':>10} {'no ERA':>8} {'km':>6}")
    for month, s in summaries.items():
        c = s["counts"]
        print(
            f"  {month:<8} {s['rows']:>8} {c['observed']:>10} {c['matched']:>10} {c['beyond_threshold']:>10} "
            f"{c['beyond_lat']:>10} {c['no_era']:>8} {s['mean_distance_km']:>6.1f}"
        )
        if c["missing_days"]:
            print(f"           missing MODIS days: {', '.join(c['missing_days'])}")
        for label, key in (("unexpected files in raw/MODIS", "unexpected_files"), ("dated by their name only", "dates_from_name")):
            if c.get(key):
                print(f"           {label}: {', '.join(os.path.basename(p) for p in c[key])}")
        if c.get("qc_classes"):
            print(f"           MODIS pixels by QC class: {', '.join(f'{k} {v}' for k, v in c['qc_classes'].items())}")
    print("  (pixels: observed in the month's hours; km: mean pixel-to-cell distance of the matched)")


def _run_dataset(args: argparse.Namespace) -> Any:
    from flows.dataset import dataset_flow

    return dataset_flow(recipe=args.recipe, name=args.name, lake_root=args.lake_root, lake_block=args.lake_block)


def _run_train(args: argparse.Namespace) -> Any:
    from flows.train import train_flow

    result = train_flow(recipe=args.recipe, name=args.name, model_name=args.model_name, lake_root=args.lake_root,
                        lake_block=args.lake_block, mlflow_block=args.mlflow_block)
    _print_train_summary(result)
    return result


def _print_train_summary(result: dict[str, Any]) -> None:
    m = result["metrics"]
    print(f"\nTest metrics (K), MLflow run {result['run_id']} ({result['tracking_uri']}):")
    print(f"  {'model':<16} {'MAE':>7} {'RMSE':>7} {'bias':>7}")
    for label, prefix in (("MLP", "test"), ("ERA skt", "baseline_skt_test"), ("linear (OLS)", "baseline_linear_test")):
        print(f"  {label:<16} {m[prefix + '_mae']:>7.3f} {m[prefix + '_rmse']:>7.3f} {m[prefix + '_bias']:>7.3f}")
    if "oracle_test_mae" in m:  # a synthetic lake: the noise-free truth, and the share of the gap to it the MLP closed
        print(f"  {'oracle (truth)':<16} {m['oracle_test_mae']:>7.3f} {m['oracle_test_rmse']:>7.3f} {m['oracle_test_bias']:>7.3f}"
              f"  gap closed (MAE): {m['gap_closed']:.4f}")
    for category in sorted(k[5:-5] for k in m if k.startswith("test_") and k.endswith("_rows")):
        print(f"  MLP, {category.replace('_', ' '):<11} {m[f'test_{category}_mae']:>7.3f} {m[f'test_{category}_rmse']:>7.3f} "
              f"{m[f'test_{category}_bias']:>7.3f}  ({int(m[f'test_{category}_rows'])} rows)")
    print(f"  model {result['model_uri']}, version {result['version']}, champion: {result['champion']}")


def _run_predict(args: argparse.Namespace) -> Any:
    from flows.predict import predict_flow

    return predict_flow(recipe=args.recipe, months=args.months, model_name=args.model_name, alias=args.alias,
                        lake_root=args.lake_root, lake_block=args.lake_block, mlflow_block=args.mlflow_block)


def _run_quarantine(args: argparse.Namespace) -> Any:
    from blocks.lake import resolve_lake
    from ml4l.quality import docs_index, quarantined

    lake = resolve_lake(args.lake_root, args.lake_block).require()
    records = quarantined(lake)
    if not records:
        print(f"nothing is quarantined in {lake.root}")
    for record in records:
        print(f"{record['dataset']:<13} {record['key']:<11} since {record['since']}")
        print(f"  {record['reason']}")
        for failed in record["failed"]:
            share = "" if failed["unexpected_percent"] is None else f", {failed['unexpected_percent']:.3g}% unexpected"
            print(f"  - {failed['name']} ({failed['type']}{share})")
        if record.get("docs"):
            print(f"  report: {record['docs']}")
    if records:
        print(f"Data Docs: {docs_index(lake)}. Fix the input and re-run the month to clear its quarantine.")
    return records


def _run_monthly(args: argparse.Namespace) -> Any:
    from flows.monthly import monthly_flow

    return monthly_flow(month=args.month, recipe=args.recipe, force=args.force, predict=not args.no_predict, compute=args.compute,
                        compute_block=args.compute_block, lake_root=args.lake_root, lake_block=args.lake_block,
                        mlflow_block=args.mlflow_block)


def _run_status(args: argparse.Namespace) -> Any:
    from blocks.lake import resolve_lake
    from ml4l.usecases.lst import status
    from ml4l.quality import quarantined

    lake = resolve_lake(args.lake_root, args.lake_block).require()
    rows, records = status.lake_status(lake), quarantined(lake)
    print(status.format_status(lake, rows, records))
    return rows


def _run_backfill(args: argparse.Namespace) -> Any:
    from flows.monthly import follow_backfill

    parameters = {"start": args.start, "end": args.end, "recipe": args.recipe, "force": args.force}
    parameters |= {k: v for k, v in (("lake_root", args.lake_root), ("lake_block", args.lake_block), ("compute", args.compute)) if v}
    return follow_backfill(parameters, print)


def _run_demo(args: argparse.Namespace) -> Any:
    from flows import registry

    names = [args.usecase] if args.usecase else list(registry.USECASES)
    results = {}
    for name in names:
        flow = registry.load(name)
        if name == "lst":
            results[name] = _print_lst_demo(flow(recipe=args.recipe, lake_root=args.lake_root, lake_block=args.lake_block))
        else:
            results[name] = _print_usecase_demo(name, flow(lake_root=args.lake_root))
    return results


def _print_usecase_demo(name: str, result: dict[str, Any]) -> dict[str, Any]:
    print(f"\nUse case {name}: test metrics (MLflow experiment ml4l-{name}, run {result.get('run_id', '-')})")
    for key, value in sorted(result.get("metrics", {}).items()):
        print(f"  {key:<44} {value:>10.4g}")
    for key, path in result.get("outputs", {}).items():
        print(f"  {key}: {path}")
    return result


def _print_lst_demo(result: dict[str, Any]) -> dict[str, Any]:
    print("\nDemo complete. ERA stores (open with xarray.open_zarr):")
    for name, path in result["stores"].items():
        print(f"  {name:<10} {path}")
    _print_join_summary(result["joined"])
    paths = [s["path"] for s in result["joined"].values()]
    if paths:
        print(f"Joined months (open with pandas.read_parquet): {paths[0].rsplit('/', 2)[0]}")
    ready = result["ml_ready"]
    print(f"ML-ready set: {ready['directory']}  rows {ready['rows']}, {ready['features']} features")
    _print_train_summary(result["train"])
    for month, report in result["predictions"].items():
        print(f"Predictions {month} (open with xarray.open_zarr): {report['path']}")
    from ml4l.lake import Lake
    from ml4l.quality import docs_index

    print(f"Data-quality reports (Data Docs): {docs_index(Lake(result['lake']))}")
    print(f"MLflow UI: make mlflow-ui, then http://127.0.0.1:5000 (store {result['train']['tracking_uri']})")
    return result


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], Any], bool]] = {
    "sample": ("write sample ERA GRIB and MODIS inputs for a recipe", _run_sample, True),
    "ingest": ("ingest ERA GRIB into the Zarr stores, month by month", _run_ingest, True),
    "join": ("join MODIS pixels to their nearest ERA cell, month by month, into Parquet", _run_join, True),
    "dataset": ("build and validate the recipe's ML-ready train/validation/test set", _run_dataset, False),
    "train": ("train the MLP on an ML-ready set, against the skt and linear baselines, logged to MLflow", _run_train, False),
    "predict": ("predict LST with the registered champion for every land cell and hour of months", _run_predict, True),
    "quarantine": ("list quarantined months and days, and the expectations they failed", _run_quarantine, False),
    "monthly": ("run the monthly pipeline (ingest, join, validate, predict) for one month, as the deployment does", _run_monthly, False),
    "status": ("table of the lake's months by stage, and the quarantined months with their reasons", _run_status, False),
    "backfill": ("run the backfill deployment from START to END on the Prefect server (make up): a child run per month", _run_backfill, False),
    "demo": ("run every use case (or --usecase NAME) end to end on its embedded defaults", _run_demo, False),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ml4l``."""
    parser = argparse.ArgumentParser(prog="ml4l", description="ml4l: machine learning for land-surface temperature.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, _, takes_months) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _common(sub)
        if name in ("dataset", "train"):
            sub.add_argument("--name", default="default", help="name of the set under ml/ [default]")
        if name in ("train", "predict"):
            sub.add_argument("--model-name", default=None, help="registered model name [the MLflow block's, or ml4l-lst]")
            sub.add_argument("--mlflow-block", default=None, help="name of a saved ml4l-mlflow-tracking block [SQLite under the lake]")
        if name == "demo":
            sub.add_argument("--usecase", default=None, help="run only this use case (lst, gapfill, ...) [all]")
        if name == "predict":
            sub.add_argument("--alias", default="champion", help="registry alias of the model to use [champion]")
        if name == "monthly":
            sub.add_argument("month", metavar="YYYY-MM", help="the month to run")
            sub.add_argument("--force", action="store_true", help="recompute the month even if it is complete and valid")
            sub.add_argument("--no-predict", action="store_true", help="skip the prediction with the champion")
            sub.add_argument("--compute", default=None, help="threads, dask-local, dask-cuda or a tcp:// scheduler address [dask-local]")
            sub.add_argument("--compute-block", default=None, help="name of a saved ml4l-compute-profile block")
            sub.add_argument("--mlflow-block", default=None, help="name of a saved ml4l-mlflow-tracking block [SQLite under the lake]")
        if name == "backfill":
            sub.add_argument("start", metavar="START", help="first month, YYYY-MM")
            sub.add_argument("end", metavar="END", help="last month, YYYY-MM")
            sub.add_argument("--force", action="store_true", help="recompute months already complete and valid")
            sub.add_argument("--compute", default=None, help="the months' compute: threads, dask-local, ... [the compute block's]")
        if takes_months:
            _months(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ml4l`` command."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices drown the run's output
    # the temporary server takes ~30 s to start on a 2-core machine; Prefect's default wait is 20 s
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from ml4l.threads import configure

    try:
        configure()  # numba, BLAS and own pools sized from ML4L_THREADS or the CPU affinity, before they start
        COMMANDS[args.command][1](args)
    except Exception as exc:  # the flow already logged the traceback
        print(f"ml4l {args.command}: failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
