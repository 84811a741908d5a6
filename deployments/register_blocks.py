"""Register ml4l's block types and save the default documents: lake storage, MLflow tracking, compute profile.

    python deployments/register_blocks.py --lake ./lake [--mlflow-uri http://127.0.0.1:5000] [--compute dask-local]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from blocks.compute import ComputeKind, ComputeProfile
from blocks.lake import LakeStorage
from blocks.mlflow import MLflowTracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", default="./lake", help="lake root to save in ml4l-lake-storage/lake [./lake]")
    parser.add_argument("--mlflow-uri", default=None, help="MLflow tracking URI for ml4l-mlflow-tracking/mlflow [SQLite under the lake]")
    parser.add_argument("--model-name", default="ml4l-lst", help="registered model name [ml4l-lst]")
    parser.add_argument("--compute", default="auto", choices=list(get_args(ComputeKind)),
                        help="kind of ml4l-compute-profile/default; slurm and pbs take their other fields from the block's "
                             "form in the UI [auto: dask-cuda with a GPU, else dask-local]")
    parser.add_argument("--address", default=None, help="Dask scheduler address, for --compute dask-address")
    parser.add_argument("--n-workers", type=int, default=None, help="Dask workers for dask-local [Dask's default]")
    args = parser.parse_args()
    root = args.lake if "://" in args.lake else str(Path(args.lake).resolve())
    for block_type in (LakeStorage, MLflowTracking, ComputeProfile):
        block_type.register_type_and_schema()
    LakeStorage(root=root).save("lake", overwrite=True)
    MLflowTracking(tracking_uri=args.mlflow_uri, model_name=args.model_name).save("mlflow", overwrite=True)
    ComputeProfile(kind=args.compute, address=args.address, n_workers=args.n_workers).save("default", overwrite=True)
    print(f"saved ml4l-lake-storage/lake -> {root}")
    print(f"saved ml4l-mlflow-tracking/mlflow -> {args.mlflow_uri or 'SQLite under the lake'} ({args.model_name})")
    print(f"saved ml4l-compute-profile/default -> {args.compute}")


if __name__ == "__main__":
    main()
