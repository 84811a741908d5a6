"""Sample inputs in the seed's forms (MMEarth-data), from the synthetic Earth, with the damage real downloads have.

Written under ``raw/tiles/<name>/`` (see ``layout.py``), replaced whole:

* ``tiles.geojson``: a FeatureCollection of tile polygons (EPSG:4326), properties ``tile_id``, ``region``,
  ``date`` (a day with MODIS in the platform's data), ``month``; ``ml4l.platform`` says which lake holds
  the platform's ERA and MODIS (``lake``: the lake itself, ``tiles-platform``: ``tiles/platform/``).
* per tile, ``stacks/<tile>.tif``: one float32 GeoTIFF (EPSG:4326, north-up, NaN = no data) stacking
  the recipe's modalities' bands in order (band descriptions ``<modality>:<band>``), and
  ``stacks/<tile>_tile_info.json``: its bands, dtype, CRS, bounds, date and missing modalities.
* ``truth/noise_free.parquet``: per tile, the mean MODIS LST without sensor noise over the same pixels
  and looks as the observed target (the oracle's prediction), and how many pixel pixels it averages.

The stacks are functions of the synthetic Earth's surface (``ml4l.synthetic``, seed ``platform.seed``)
at each pixel, plus small sensor noise, so they carry what the LST truth depends on:

* ``sentinel2`` reflectances from vegetation (``cvh + cvl``), bare soil and its brightness, water and ice;
* ``sentinel1`` VV/VH backscatter (dB) from forest, grass and water;
* ``aster`` elevation (ERA's ``z / g`` plus the sub-grid orography the truth's lapse-rate term uses) and slope;
* ``dynamic_world`` land-cover label (0 water, 1 trees, 2 grass, 7 bare, 8 snow and ice);
* ``canopy_height`` from high-vegetation cover.

The target of the use case is a tile's mean MODIS LST (``modis_lst``, read from the lake's MODIS by the
build): the truth of ``ml4l.synthetic`` (ERA skt plus heating, dryness, bare dark ground, lakes, ice and
sub-grid height terms) plus 0.9 K sensor noise per pixel look. A model sees ERA's monthly t2m statistics
and the stack, not the overpass-time skt, so the noise-free truth bounds what it can reach.

Damage (tiles chosen by the seed): ``missing`` (no files), ``truncated`` (GeoTIFF cut at 60 %),
``corrupt`` (GeoTIFF header overwritten), ``wrong_band_count`` (one band fewer than tile_info lists),
``late`` (files under ``late/``, moved into ``stacks/`` by :func:`deliver_late`: a re-download that
succeeds). A new sample also removes the tile set's ledger and products: they belong to the old inputs.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml4l.lake import Lake
from ml4l.synthetic import GRAVITY, SyntheticEarth
from ml4l.types import Month
from ml4l.usecases.tiles.layout import RawTiles, TilesLake, platform_lake
from ml4l.usecases.tiles.platform import TileGrid, available_months, ensure_platform, modis_composite, modis_days
from ml4l.usecases.tiles.recipe import TilesRecipe

CRS = "EPSG:4326"
DTYPE = "float32"
METRES_PER_DEGREE = 111_320.0
DEFECTS = ("missing", "truncated", "corrupt", "wrong_band_count", "late")


@dataclass(frozen=True)
class SampleReport:
    geojson: str
    tiles: int
    defects: dict[str, list[str]]
    platform: str
    months: list[Month]


def platform_name(lake: Lake, platform: Lake) -> str:
    """How the GeoJSON names the platform lake: ``lake`` or ``tiles-platform``."""
    return "lake" if platform.root == lake.root else "tiles-platform"


def platform_named(lake: Lake, name: str) -> Lake:
    """The platform lake a GeoJSON names (:func:`platform_name`)."""
    return lake if name == "lake" else platform_lake(lake)


def _region_centres(earth: SyntheticEarth, recipe: TilesRecipe, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``(regions, 2)`` lat, lon on land, away from the poles and the antimeridian."""
    spec = recipe.tiles
    margin = spec.spread_deg + spec.size_deg
    found: list[tuple[float, float]] = []
    while len(found) < spec.regions:
        lat = rng.uniform(-spec.lat_limit, spec.lat_limit, 256)
        lon = rng.uniform(-180 + margin, 180 - margin, 256)
        land = earth.land_sea_mask(lat, lon) > 0.5
        found.extend(zip(lat[land].tolist(), lon[land].tolist(), strict=True))
    return np.asarray(found[: spec.regions])


def stack_bands(earth: SyntheticEarth, recipe: TilesRecipe, grid: TileGrid, rng: np.random.Generator) -> dict[str, npt.NDArray[np.float32]]:
    """Every default modality's bands at every tile pixel, ``name -> (tiles, bands, pixels, pixels)``."""
    n, p = grid.lat.shape
    lat = np.broadcast_to(grid.lat[:, :, None], (n, p, p)).ravel()
    lon = np.broadcast_to(grid.lon[:, None, :], (n, p, p)).ravel()
    v15, v20 = earth.constants(lat, lon, 15), earth.constants(lat, lon, 20)
    shape = (n, p, p)
    cvh, cvl = v20["cvh"].reshape(shape), v20["cvl"].reshape(shape)
    water = np.clip(v20["cl"] + (1 - v20["lsm"]), 0, 1).reshape(shape)
    snow = v20["si10"].reshape(shape)
    veg = cvh + cvl
    bare = np.clip(1 - veg, 0, 1) * (1 - water)
    soil = (v20["slt"] / 7.0).reshape(shape)
    elevation = (v15["z"] / GRAVITY + earth.subgrid_height(lat, lon, v15["sdor"])).reshape(shape)
    step_m = recipe.tiles.size_deg / p * METRES_PER_DEGREE
    d_north, d_east = np.gradient(elevation, axis=(1, 2))
    east_scale = np.cos(np.radians(grid.lat))[:, :, None]
    slope = np.degrees(np.arctan(np.hypot(d_north / step_m, d_east / (step_m * east_scale))))

    def noisy(x: npt.NDArray[np.float64], sd: float) -> npt.NDArray[np.float64]:
        return np.asarray(x + rng.normal(0.0, sd, x.shape))

    reflectance = [
        0.05 + 0.04 * bare * soil + 0.55 * snow + 0.02 * water,
        0.07 + 0.04 * veg + 0.05 * bare * soil + 0.55 * snow,
        0.06 + 0.14 * bare * (0.5 + soil) - 0.03 * cvh + 0.5 * snow,
        0.12 + 0.35 * veg * (1 - water) + 0.1 * bare + 0.45 * snow - 0.08 * water,
        0.10 + 0.22 * bare * (0.5 + soil) + 0.08 * cvl - 0.06 * water + 0.1 * snow,
    ]
    vv = noisy(-17.0 + 6.0 * cvh + 3.0 * cvl - 8.0 * water, 1.0)
    label = np.where(water > 0.5, 0, np.where(snow > 0.5, 8, np.where(cvh > 0.4, 1, np.where(cvl > 0.35, 2, 7))))
    bands = {
        "sentinel2": np.stack([np.clip(noisy(r, 0.005), 0.0, 1.2) for r in reflectance], axis=1),
        "sentinel1": np.stack([vv, noisy(vv - 6.5 + 2.0 * cvh, 0.5)], axis=1),
        "aster": np.stack([elevation, slope], axis=1),
        "dynamic_world": label[:, None].astype(np.float64),
        "canopy_height": np.clip(noisy(32.0 * cvh, 0.5), 0.0, None)[:, None],
    }
    return {name: values.astype(np.float32) for name, values in bands.items()}


def generate(lake: Lake, recipe: TilesRecipe) -> SampleReport:
    """Write the tile set's GeoJSON, stacks, tile_info files and noise-free truth (see the module docstring)."""
    tiles_lake = TilesLake(lake, recipe.name)
    platform = ensure_platform(lake, recipe.platform)
    months = available_months(platform)
    earth = SyntheticEarth(recipe.platform.seed)
    rng = np.random.default_rng(recipe.seed)
    spec = recipe.tiles
    centres = _region_centres(earth, recipe, rng)
    region = np.arange(spec.count) % spec.regions
    lat_c = centres[region, 0] + rng.uniform(-spec.spread_deg, spec.spread_deg, spec.count)
    lon_c = centres[region, 1] + rng.uniform(-spec.spread_deg, spec.spread_deg, spec.count)
    tile_months = [months[k] for k in rng.integers(0, len(months), spec.count)]
    days = {m: modis_days(platform, m) for m in months}
    dates = [days[m][int(rng.integers(0, len(days[m])))] for m in tile_months]
    west, north = lon_c - spec.size_deg / 2, lat_c + spec.size_deg / 2
    grid = TileGrid.of(west, north, spec.size_deg, spec.pixels, tile_months)
    bands = stack_bands(earth, recipe, grid, rng)
    unknown = [m.name for m in recipe.modalities if m.name not in bands or bands[m.name].shape[1] != len(m.bands)]
    if unknown:
        raise ValueError(f"the sample makes {', '.join(f'{k} ({v.shape[1]} bands)' for k, v in bands.items())}, not {unknown}")
    missing_modality = {m.name: rng.random(spec.count) < m.missing_share for m in recipe.modalities}
    ids = [f"tile_{i:05d}" for i in range(spec.count)]
    damaged = rng.choice(spec.count, recipe.defects.total, replace=False)
    defects: dict[str, list[str]] = {}
    start = 0
    for kind in DEFECTS:
        k = getattr(recipe.defects, kind)
        defects[kind] = sorted(ids[i] for i in damaged[start : start + k])
        start += k
    defect_of = {tile: kind for kind, tiles in defects.items() for tile in tiles}
    truth = modis_composite(platform, grid, truth=earth)
    assert truth.noise_free is not None
    observed_pixels = np.isfinite(truth.noise_free).sum(axis=(1, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a tile no MODIS look saw has no truth: NaN
        noise_free = np.nanmean(truth.noise_free, axis=(1, 2, 3))

    with lake.replace_whole(tiles_lake.raw.root) as staging:
        raw = RawTiles(staging)
        for folder in (raw.folder(), raw.folder(late=True), raw.truth.rsplit("/", 1)[0]):
            Path(folder).mkdir(parents=True, exist_ok=True)
        features = []
        for i, tile in enumerate(ids):
            bounds = (float(west[i]), float(north[i] - spec.size_deg), float(west[i] + spec.size_deg), float(north[i]))
            features.append(_feature(tile, bounds, int(region[i]), dates[i], tile_months[i]))
            stack = np.concatenate([np.where(missing_modality[m.name][i], np.nan, bands[m.name][i]) for m in recipe.modalities])
            info = {
                "tile_id": tile,
                "crs": CRS,
                "bounds": list(bounds),
                "date": dates[i],
                "dtype": DTYPE,
                "pixels": spec.pixels,
                "bands": recipe.band_names,
                "nodata": "nan",
                "missing_modalities": [m.name for m in recipe.modalities if missing_modality[m.name][i]],
                "source": "ml4l synthetic MMEarth-like stack",
            }
            _write_tile(raw, tile, stack, info, bounds, defect_of.get(tile))
        collection = {
            "type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": CRS}},
            "ml4l": {"platform": platform_name(lake, platform), "recipe": recipe.name},
            "features": features,
        }
        Path(raw.geojson).write_text(json.dumps(collection, indent=1))
        pd.DataFrame({"tile_id": ids, "lst_noise_free": noise_free, "observed_pixels": observed_pixels}).to_parquet(raw.truth, index=False)
    if lake.fs.exists(tiles_lake.product()):
        lake.fs.rm(tiles_lake.product(), recursive=True)
    return SampleReport(tiles_lake.raw.geojson, spec.count, defects, platform_name(lake, platform), months)


def _feature(tile: str, bounds: tuple[float, float, float, float], region: int, date: str, month: Month) -> dict[str, Any]:
    w, s, e, n = bounds
    ring = [[w, n], [e, n], [e, s], [w, s], [w, n]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"tile_id": tile, "region": region, "date": date, "month": month},
    }


def _write_tile(
    raw: RawTiles,
    tile: str,
    stack: npt.NDArray[np.float32],
    info: dict[str, Any],
    bounds: tuple[float, float, float, float],
    defect: str | None,
) -> None:
    if defect == "missing":
        return
    late = defect == "late"
    if defect == "wrong_band_count":
        stack = stack[:-1]
    write_stack(raw.stack(tile, late), stack, info["bands"][: stack.shape[0]], bounds)
    Path(raw.tile_info(tile, late)).write_text(json.dumps(info, indent=1))
    path = Path(raw.stack(tile, late))
    if defect == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.6)])
    elif defect == "corrupt":
        damaged = bytearray(path.read_bytes())
        damaged[:64] = bytes(range(64))
        path.write_bytes(bytes(damaged))


def write_stack(
    path: str,
    stack: npt.NDArray[np.float32],
    descriptions: Sequence[str],
    bounds: tuple[float, float, float, float],
    crs: str = CRS,
) -> None:
    """One float32 GeoTIFF, NaN as no data, bands described as ``<modality>:<band>``."""
    import rasterio
    from rasterio.transform import from_bounds

    count, height, width = stack.shape
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": DTYPE,
        "crs": crs,
        "transform": from_bounds(*bounds, width, height),
        "nodata": float("nan"),
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(stack.astype(np.float32))
        dst.descriptions = tuple(descriptions)


def deliver_late(lake: Lake, recipe: TilesRecipe) -> list[str]:
    """Move the late downloads into ``stacks/`` (the re-download of failed tiles succeeding); returns their ids."""
    raw = TilesLake(lake, recipe.name).raw
    late = Path(raw.folder(late=True))
    delivered = []
    for tif in sorted(late.glob("*.tif")):
        tile = tif.stem
        shutil.move(raw.tile_info(tile, late=True), raw.tile_info(tile))
        shutil.move(str(tif), raw.stack(tile))
        delivered.append(tile)
    return delivered
