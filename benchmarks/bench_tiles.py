"""Tiles build throughput against a plain rasterio + h5py loop, measured in the same run.

The plain loop reads each GeoTIFF in GeoJSON order and writes it into one HDF5 dataset (same chunks and
compression), nothing else. The build (``ml4l.usecases.tiles.build.build``) also reads the platform's ERA
t2m statistics and MODIS LST, runs the GX check of every tile, commits parts and the ledger, then writes
the HDF5 with every modality, the band statistics, the splits and the tile_info. Imports are warmed
first (GX alone takes seconds to import), so both figures are steady-state.

    nice .venv/bin/python -m benchmarks.bench_tiles [--tiles 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def plain_loop(geojson: str, stacks: str, target: str, level: int) -> int:
    """Read each tile's GeoTIFF and write it into one HDF5 dataset; returns the tiles written."""
    import h5py
    import rasterio

    features = json.loads(Path(geojson).read_text())["features"]
    ids = [f["properties"]["tile_id"] for f in features if Path(f"{stacks}/{f['properties']['tile_id']}.tif").exists()]
    with rasterio.open(f"{stacks}/{ids[0]}.tif") as src:
        shape = (src.count, src.height, src.width)
    with h5py.File(target, "w") as out:
        dataset = out.create_dataset(
            "stack",
            shape=(len(ids), *shape),
            dtype="float32",
            chunks=(1, *shape),
            compression="gzip",
            compression_opts=level,
            shuffle=True,
        )
        for k, tile in enumerate(ids):
            with rasterio.open(f"{stacks}/{tile}.tif") as src:
                dataset[k] = src.read()
    return len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import great_expectations  # noqa: F401  (warm: see the module docstring)

    from ml4l.lake import Lake
    from ml4l.usecases.tiles.build import build
    from ml4l.usecases.tiles.layout import TilesLake
    from ml4l.usecases.tiles.recipe import TilesRecipe
    from ml4l.usecases.tiles.sample import generate

    recipe = TilesRecipe.model_validate(
        {
            "name": "bench",
            "tiles": {"count": args.tiles, "regions": max(3, args.tiles // 5)},
            "platform": {"grid": "N32", "start": "2019-01", "end": "2019-01", "days": 2, "modis_resolution": 1.0},
            "build": {"workers": args.workers},
            # no damaged tiles: the plain loop, like the seed's conversion, stops at the first bad one
            "defects": {"missing": 0, "truncated": 0, "corrupt": 0, "wrong_band_count": 0, "late": 0},
        }
    )
    with tempfile.TemporaryDirectory(prefix="ml4l-bench-tiles-") as root:
        lake = Lake.at(root)
        generate(lake, recipe)
        paths = TilesLake(lake, recipe.name)
        plain, ours = [], []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            written = plain_loop(
                paths.raw.geojson, paths.raw.folder(), f"{root}/plain-{repeat}.h5", recipe.build.compression_level
            )
            plain.append(written / (time.perf_counter() - start))
            if lake.fs.exists(paths.product()):  # a fresh ledger: every tile is built again
                lake.fs.rm(paths.product(), recursive=True)
            start = time.perf_counter()
            report = build(lake, recipe)
            ours.append((report.counts["done"] + report.counts["failed"]) / (time.perf_counter() - start))
        print(
            f"{args.tiles} tiles of {recipe.tiles.pixels}x{recipe.tiles.pixels} px, {len(recipe.band_names)} bands; "
            f"{report.tiles_written} written, {report.counts['failed']} failed; {args.workers} Dask workers"
        )
        print(f"plain rasterio + h5py loop : {np.median(plain):8.1f} tiles/s (median of {args.repeats})")
        print(
            f"ml4l tiles build           : {np.median(ours):8.1f} tiles/s (median of {args.repeats}; checks, ledger, ERA, MODIS, stats, splits)"
        )


if __name__ == "__main__":
    main()
