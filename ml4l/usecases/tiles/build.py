"""The build: tiles read and checked in parallel (Dask), committed one by one, then ONE writer makes the HDF5.

Staged as init, load in parts, finalise:

1. :func:`prepare` registers every GeoJSON tile in the ledger, then takes the pending ones in batches:
   reads each stack and tile_info as a Dask task, runs the ``tile`` suite over the batch's rows, reads
   the platform's modalities (ERA t2m statistics, MODIS LST) for the tiles that passed, one pass per
   month for all of them, and commits the batch: each passing tile's arrays as ``parts/<tile>.npz``
   (written aside, then renamed), then in one ledger transaction ``done`` for them and ``failed`` with
   its reason for each other tile. A bad tile never stops the build.
2. :func:`assemble` (the one HDF5 writer) takes the done tiles in GeoJSON order and writes the HDF5
   in MMEarth's layout, the band statistics over the training tiles, the splits and the merged
   tile_info, each written aside and swapped in whole.

A killed build leaves committed parts and a ledger that says which: the next build does the rest,
and since parts and assembly are deterministic, its HDF5 equals an uninterrupted build's.

HDF5 layout (``tiles/<name>/<name>.h5``)::

    <modality>   float32 (tiles, bands, pixels, pixels), NaN = no data, chunks of one tile, gzip
    era5         float32 (tiles, 3): t2m mean, min, max of the tile's month (tile-level, as MMEarth's era5)
    modis_lst    float32 (tiles, 1, pixels, pixels): the month's mean MODIS LST, K
    lat, lon     float64 (tiles,): tile centre; month uint8 (tiles,)
    metadata     compound (tiles,): tile_id, crs, date, source
    attrs        kind, recipe (JSON), split_hash; each dataset's ``bands``
"""

from __future__ import annotations

import json
import os
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.ml.splits import SPLIT_NAMES, TRAIN, check_group_leakage, group_split, split_hash
from ml4l.ml.stats import RunningStats
from ml4l.usecases.tiles.check import (
    TileFailure,
    TileRead,
    check_table,
    failing_tiles,
    feature_bounds,
    modality_slices,
    read_tile,
)
from ml4l.usecases.tiles.layout import TilesLake
from ml4l.usecases.tiles.ledger import DONE, PENDING, Ledger
from ml4l.usecases.tiles.platform import ERA_BANDS, MODIS_BANDS, TileGrid, era_statistics, modis_composite
from ml4l.usecases.tiles.recipe import TilesRecipe
from ml4l.usecases.tiles.sample import platform_named

Progress = Callable[[str], None]
ERA, MODIS = "era5", "modis_lst"
SPLIT_KEYS = {"train": "train", "validation": "val", "test": "test"}  # MMEarth's splits file says "val"


@dataclass(frozen=True)
class TileSet:
    """The GeoJSON of a tile set: its features in order, the CRS and which lake holds the platform's data."""

    features: list[dict[str, Any]]
    crs: str
    platform: str

    @property
    def ids(self) -> list[str]:
        return [str(f["properties"]["tile_id"]) for f in self.features]


def read_tile_set(path: str) -> TileSet:
    """The GeoJSON at ``path``; :class:`InputError` naming it when it is not a FeatureCollection of tiles."""
    try:
        collection = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "no tile GeoJSON: write the sample (or download the tiles) first") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the tile GeoJSON: {exc}") from None
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise InputError(path, "not a GeoJSON FeatureCollection")
    features = collection.get("features") or []
    ids = []
    for k, feature in enumerate(features):
        try:
            ids.append(str(feature["properties"]["tile_id"]))
            feature_bounds(feature)
            str(feature["properties"]["month"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise InputError(path, f"feature {k} is not a tile polygon with tile_id and month: {exc!r}") from None
    if len(set(ids)) != len(ids):
        raise InputError(path, "tile ids are not unique")
    crs = ((collection.get("crs") or {}).get("properties") or {}).get("name", "EPSG:4326")
    return TileSet(features, str(crs), str((collection.get("ml4l") or {}).get("platform", "lake")))


@dataclass
class BuildReport:
    """What a build left: its products, the ledger's counts and the tiles written to the HDF5."""

    hdf5: str
    band_stats: str
    splits: str
    tile_info: str
    ledger: str
    counts: dict[str, int] = field(default_factory=dict)
    tiles_written: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _require_local(lake: Lake) -> None:
    if not lake.is_local:
        raise InputError(lake.root, "the tiles use case needs a local lake: HDF5 (h5py) and the SQLite ledger write local files")


def build(lake: Lake, recipe: TilesRecipe, progress: Progress | None = None) -> BuildReport:
    """Prepare every pending tile, then assemble the HDF5 and its companions."""
    with lake.lock(TilesLake(lake, recipe.name).lock):
        prepare(lake, recipe, progress=progress)
        return assemble(lake, recipe)


def prepare(
    lake: Lake, recipe: TilesRecipe, tiles: Sequence[str] | None = None, progress: Progress | None = None
) -> dict[str, TileFailure | None]:
    """Read, check and commit ``tiles`` (default: the pending ones); per tile, its failure or ``None``.

    Each tile processed counts one attempt in the ledger.
    """
    _require_local(lake)
    paths = TilesLake(lake, recipe.name)
    tile_set = read_tile_set(paths.raw.geojson)
    ledger = Ledger(paths.ledger)
    ledger.register(tile_set.ids)
    ledger.reset([t for t in ledger.tiles_in(DONE) if not Path(paths.part(t)).exists()])  # a part is gone: do it again
    wanted = list(tiles) if tiles is not None else ledger.tiles_in(PENDING)
    by_id = {str(f["properties"]["tile_id"]): f for f in tile_set.features}
    unknown = [t for t in wanted if t not in by_id]
    if unknown:
        raise InputError(paths.raw.geojson, f"{len(unknown)} tiles are not in the GeoJSON, e.g. {unknown[0]!r}")
    outcomes: dict[str, TileFailure | None] = {}
    if not wanted:
        return outcomes
    features = [by_id[t] for t in wanted]
    platform = platform_named(lake, tile_set.platform)
    for first in range(0, len(features), recipe.build.batch):
        batch = features[first : first + recipe.build.batch]
        ledger.attempt([str(f["properties"]["tile_id"]) for f in batch])
        reads, failures = _read_batch(paths.raw, batch, tile_set.crs, recipe.build.workers)
        for tile, reasons in failing_tiles(check_table(reads, recipe), recipe).items():
            failures[tile] = TileFailure(tile, "; ".join(reasons), transient=False)
        passed = [read for read in reads if read.tile not in failures]
        if passed:  # the platform's modalities, for the batch's good tiles at once (one pass per month)
            grid = tile_grid([by_id[read.tile] for read in passed], recipe)
            era = era_statistics(platform, grid.lat.mean(axis=1), grid.lon.mean(axis=1), list(grid.months))
            modis = modis_composite(platform, grid).observed
        for i, read in enumerate(passed):
            _write_part(paths.part(read.tile), _arrays(read, recipe, era[i], modis[i]))
        ledger.commit([read.tile for read in passed], {t: (f.reason, f.transient) for t, f in failures.items()})
        outcomes.update({read.tile: None for read in passed})
        outcomes.update(failures)
        if progress is not None:
            for feature in batch:
                progress(str(feature["properties"]["tile_id"]))
    return outcomes


def tile_grid(features: Sequence[dict[str, Any]], recipe: TilesRecipe) -> TileGrid:
    """The pixel centres and months of the GeoJSON tiles ``features``."""
    bounds = np.asarray([feature_bounds(f) for f in features])
    months = [str(f["properties"]["month"]) for f in features]
    return TileGrid.of(bounds[:, 0], bounds[:, 3], recipe.tiles.size_deg, recipe.tiles.pixels, months)


def _read_batch(raw: Any, features: Sequence[dict[str, Any]], crs: str, workers: int) -> tuple[list[TileRead], dict[str, TileFailure]]:
    """Read the batch's tiles as parallel Dask tasks (threads: GDAL and NumPy release the GIL)."""
    import dask

    def attempt(k: int) -> TileRead | TileFailure:
        try:
            return read_tile(raw, features[k], crs)
        except TileFailure as failure:
            return failure

    # tasks take the feature's index: Dask would walk a feature dict looking for collections
    results = dask.compute(*[dask.delayed(attempt)(k) for k in range(len(features))], scheduler="threads", num_workers=workers)
    reads = [r for r in results if isinstance(r, TileRead)]
    failures = {r.tile: r for r in results if isinstance(r, TileFailure)}
    return reads, failures


def _arrays(
    read: TileRead, recipe: TilesRecipe, era: npt.NDArray[np.float32], modis: npt.NDArray[np.float32]
) -> dict[str, npt.NDArray[np.float32]]:
    slices = modality_slices(read.info, recipe)
    out = {m.name: read.stack[slices[m.name]].astype(np.float32) for m in recipe.modalities}
    out[ERA] = np.asarray(era, dtype=np.float32)
    out[MODIS] = np.asarray(modis, dtype=np.float32)
    return out


def _write_part(path: str, arrays: dict[str, npt.NDArray[np.float32]]) -> None:
    """Write aside, then rename: a part is whole or absent."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    staging = f"{path}.tmp-{uuid.uuid4().hex[:8]}.npz"
    try:
        np.savez(staging, **arrays)  # type: ignore[arg-type]  # NumPy's stub fears a key named allow_pickle
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def tile_groups(features: Sequence[dict[str, Any]]) -> npt.NDArray[np.int64]:
    """Group of each tile: tiles of one region, and tiles whose footprints overlap, share a group (union-find)."""
    n = len(features)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    def join(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    bounds = np.asarray([feature_bounds(f) for f in features])
    regions = [f["properties"].get("region") for f in features]
    first_of: dict[Any, int] = {}
    for i, region in enumerate(regions):
        if region is not None:
            join(first_of.setdefault(region, i), i)
    for i in range(n):
        overlap = (
            (bounds[i, 0] < bounds[:, 2]) & (bounds[:, 0] < bounds[i, 2]) & (bounds[i, 1] < bounds[:, 3]) & (bounds[:, 1] < bounds[i, 3])
        )
        for j in np.flatnonzero(overlap[i + 1 :]) + i + 1:
            join(i, int(j))
    return np.asarray([root(i) for i in range(n)], dtype=np.int64)


def assemble(lake: Lake, recipe: TilesRecipe) -> BuildReport:
    """Write the HDF5, band statistics, splits and merged tile_info from the done tiles (the one writer)."""
    _require_local(lake)
    paths = TilesLake(lake, recipe.name)
    tile_set = read_tile_set(paths.raw.geojson)
    ledger = Ledger(paths.ledger)
    done = set(ledger.tiles_in(DONE))
    groups = tile_groups(tile_set.features)
    labels = group_split(groups, fractions=recipe.split.fractions, seed=recipe.split.seed)
    check_group_leakage(groups, labels)
    kept = [i for i, t in enumerate(tile_set.ids) if t in done]
    if not kept:
        raise InputError(paths.raw.geojson, f"no tile is done, so there is no HDF5 to write: see the reasons in {paths.ledger}")
    ids = [tile_set.ids[i] for i in kept]
    parts = {t: dict(np.load(paths.part(t))) for t in ids}
    kept_labels = labels[kept]
    split_digest = split_hash(labels)
    stats = band_statistics(ids, kept_labels, parts, recipe)
    modalities = {m.name: list(m.bands) for m in recipe.modalities} | {ERA: list(ERA_BANDS), MODIS: list(MODIS_BANDS)}
    splits = {
        "seed": recipe.split.seed,
        "fractions": list(recipe.split.fractions),
        "split_hash": split_digest,
        "groups": int(np.unique(groups).size),
        **{SPLIT_KEYS[name]: [int(k) for k in np.flatnonzero(kept_labels == label)] for label, name in SPLIT_NAMES.items()},
        "tile_ids": {
            SPLIT_KEYS[name]: [t for t, lab in zip(ids, kept_labels, strict=True) if lab == label] for label, name in SPLIT_NAMES.items()
        },
    }
    infos = {}
    for k, t in enumerate(ids):
        info = json.loads(Path(paths.raw.tile_info(t)).read_text())
        infos[t] = {**info, "index": k, "split": SPLIT_KEYS[SPLIT_NAMES[int(kept_labels[k])]]}
    _write_json(lake, paths.band_stats, stats)
    _write_json(lake, paths.splits, splits)
    _write_json(lake, paths.merged_tile_info, infos)
    with lake.replace_whole(paths.hdf5) as staging:
        _write_hdf5(staging, ids, tile_set, parts, modalities, recipe, split_digest)
    return BuildReport(paths.hdf5, paths.band_stats, paths.splits, paths.merged_tile_info, paths.ledger, ledger.counts(), len(ids))


def band_statistics(
    ids: Sequence[str],
    labels: npt.NDArray[np.int8],
    parts: dict[str, dict[str, npt.NDArray[np.float32]]],
    recipe: TilesRecipe,
) -> dict[str, Any]:
    """Per modality and band, over the training tiles' valid pixels: count, mean, std, min, max (float64 Chan
    merges, tile by tile) and the recipe's percentiles."""
    training = [t for t, label in zip(ids, labels, strict=True) if label == TRAIN]
    names = [m.name for m in recipe.modalities] + [ERA, MODIS]
    out: dict[str, Any] = {
        "training_tiles": len(training),
        "percentiles": list(recipe.stats.percentiles),
        "modalities": {},
    }
    for name in names:
        if not training:
            break
        bands = _band_names(name, recipe)
        accumulator = RunningStats(len(bands))
        pixels = []
        for tile in training:
            x = parts[tile][name].astype(np.float64).reshape(len(bands), -1).T
            accumulator.merge(RunningStats(len(bands)).update(x))
            pixels.append(x)
        summary = accumulator.to_dict(bands)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a band with no valid training pixel has no percentile
            quantiles = np.nanpercentile(np.concatenate(pixels), recipe.stats.percentiles, axis=0)
        for k, band in enumerate(bands):
            summary[band].update({f"p{q:g}": float(quantiles[j, k]) for j, q in enumerate(recipe.stats.percentiles)})
        out["modalities"][name] = summary
    return out


def _band_names(name: str, recipe: TilesRecipe) -> list[str]:
    if name == ERA:
        return list(ERA_BANDS)
    if name == MODIS:
        return list(MODIS_BANDS)
    return list(next(m.bands for m in recipe.modalities if m.name == name))


def _write_json(lake: Lake, target: str, data: Any) -> None:
    with lake.replace_whole(target) as staging:
        Path(staging).write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=True))


def _write_hdf5(
    path: str,
    ids: Sequence[str],
    tile_set: TileSet,
    parts: dict[str, dict[str, npt.NDArray[np.float32]]],
    modalities: dict[str, list[str]],
    recipe: TilesRecipe,
    split_digest: str,
) -> None:
    import h5py

    n, p = len(ids), recipe.tiles.pixels
    by_id = {str(f["properties"]["tile_id"]): f for f in tile_set.features}
    features = [by_id[t] for t in ids]
    crs, platform = tile_set.crs, tile_set.platform
    bounds = np.asarray([feature_bounds(f) for f in features]).reshape(n, 4)
    metadata_type = np.dtype([("tile_id", "S32"), ("crs", "S16"), ("date", "S10"), ("source", "S128")])
    metadata = np.zeros(n, dtype=metadata_type)
    for k, feature in enumerate(features):
        source = f"stacks/{ids[k]}.tif; era5, modis_lst: {platform} lake"
        metadata[k] = (ids[k], crs, feature["properties"].get("date", ""), source)
    with h5py.File(path, "w", libver="earliest") as out:
        out.attrs["kind"] = recipe.kind
        out.attrs["recipe"] = recipe.model_dump_json()
        out.attrs["split_hash"] = split_digest
        for name, bands in modalities.items():
            shape = (n, len(bands)) if name == ERA else (n, len(bands), p, p)
            dataset = out.create_dataset(
                name,
                shape=shape,
                dtype="float32",
                chunks=(1, *shape[1:]),
                compression="gzip",
                compression_opts=recipe.build.compression_level,
                shuffle=True,
                fillvalue=np.float32(np.nan),
                track_times=False,
            )
            dataset.attrs["bands"] = bands
            for k, tile in enumerate(ids):
                dataset[k] = parts[tile][name]
        centre_lat = (bounds[:, 1] + bounds[:, 3]) / 2
        centre_lon = (bounds[:, 0] + bounds[:, 2]) / 2
        months = np.asarray([int(str(f["properties"]["month"])[5:7]) for f in features], dtype=np.uint8)
        for name, values in (("lat", centre_lat), ("lon", centre_lon), ("month", months), ("metadata", metadata)):
            out.create_dataset(name, data=values, track_times=False)
