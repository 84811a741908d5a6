"""Reading a downloaded tile and its Great Expectations check (suite ``expectations/tile.yaml``).

:func:`read_tile` raises :class:`TileFailure` (transient: a re-download may fix it) when the GeoTIFF
or its tile_info is missing or unreadable. :func:`check_table` turns read tiles into one row per
(tile, modality); :func:`failing_tiles` validates the rows of many tiles in one GX run and returns,
per failing tile, the expectations it failed with the row's values: the reasons the ledger records.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml4l.quality import _gx_suite, load_suite, widened
from ml4l.usecases.tiles.layout import RawTiles
from ml4l.usecases.tiles.recipe import TilesRecipe

SUITE = "tile"
_TILE_COLUMNS = {"band_count", "info_band_count", "dtype", "info_dtype", "crs", "geojson_crs", "footprint_error_px"}
_GX_LOCK = threading.Lock()
_GX: dict[str, Any] = {}


class TileFailure(Exception):
    """A tile that cannot go into the HDF5; ``transient`` when a re-download may fix it."""

    def __init__(self, tile: str, reason: str, transient: bool) -> None:
        super().__init__(tile, reason, transient)  # args rebuild it when pickled (Prefect stores task results)
        self.tile, self.reason, self.transient = tile, reason, transient

    def __str__(self) -> str:
        return f"{self.tile}: {self.reason}"


@dataclass(frozen=True)
class TileRead:
    """A tile as read: the raster's bands and facts, its tile_info and its GeoJSON feature's footprint."""

    tile: str
    stack: npt.NDArray[np.float32]
    dtypes: tuple[str, ...]
    crs: str
    bounds: tuple[float, float, float, float]
    resolution: float
    info: dict[str, Any]
    footprint: tuple[float, float, float, float]
    geojson_crs: str


def feature_bounds(feature: dict[str, Any]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a GeoJSON polygon feature."""
    ring = np.asarray(feature["geometry"]["coordinates"][0], dtype=np.float64)
    return float(ring[:, 0].min()), float(ring[:, 1].min()), float(ring[:, 0].max()), float(ring[:, 1].max())


def read_tile(raw: RawTiles, feature: dict[str, Any], geojson_crs: str) -> TileRead:
    """Read the tile's GeoTIFF and tile_info; :class:`TileFailure` (transient) when either is missing or unreadable."""
    import rasterio
    from rasterio.errors import RasterioError

    tile = str(feature["properties"]["tile_id"])
    stack_path, info_path = raw.stack(tile), raw.tile_info(tile)
    if not Path(stack_path).exists():
        raise TileFailure(tile, f"GeoTIFF missing: {stack_path}", transient=True)
    try:
        info = json.loads(Path(info_path).read_text())
    except FileNotFoundError:
        raise TileFailure(tile, f"tile_info missing: {info_path}", transient=True) from None
    except (OSError, ValueError) as exc:
        raise TileFailure(tile, f"tile_info unreadable: {info_path}: {exc}", transient=True) from None
    try:
        with rasterio.open(stack_path) as src:
            stack = src.read().astype(np.float32, copy=False)
            crs = src.crs.to_string() if src.crs else ""
            bounds = (src.bounds.left, src.bounds.bottom, src.bounds.right, src.bounds.top)
            return TileRead(
                tile,
                stack,
                tuple(src.dtypes),
                crs,
                bounds,
                float(abs(src.transform.a)),
                info,
                feature_bounds(feature),
                geojson_crs,
            )
    except RasterioError as exc:
        raise TileFailure(tile, f"GeoTIFF unreadable: {stack_path}: {exc}", transient=True) from None


def modality_slices(info: dict[str, Any], recipe: TilesRecipe) -> dict[str, list[int]]:
    """Positions, in the GeoTIFF, of each recipe modality's bands as tile_info lists them."""
    names = [str(b) for b in info.get("bands", [])]
    return {m.name: [i for i, b in enumerate(names) if b.split(":", 1)[0] == m.name] for m in recipe.modalities}


def check_table(reads: Sequence[TileRead], recipe: TilesRecipe) -> pd.DataFrame:
    """One row per (tile, modality), the columns the ``tile`` suite checks."""
    rows = []
    for read in reads:
        info_bands = [str(b) for b in read.info.get("bands", [])]
        slices = modality_slices(read.info, recipe)
        whole = read.stack.shape[0] == len(info_bands)
        corners = np.abs(np.subtract(read.bounds, read.footprint)).max() / read.resolution
        for modality in recipe.modalities:
            index = slices[modality.name]
            values = read.stack[index] if whole and index else None
            valid = values is not None and bool(np.isfinite(values).any())
            rows.append(
                {
                    "tile_id": read.tile,
                    "modality": modality.name,
                    "band_count": read.stack.shape[0],
                    "info_band_count": len(info_bands),
                    "dtype": ",".join(sorted(set(read.dtypes))),
                    "info_dtype": str(read.info.get("dtype", "")),
                    "bands": ",".join(info_bands[i] for i in index),
                    "recipe_bands": ",".join(f"{modality.name}:{b}" for b in modality.bands),
                    "crs": read.crs,
                    "geojson_crs": read.geojson_crs,
                    "footprint_error_px": float(corners),
                    "min": float(np.nanmin(values)) if valid and values is not None else np.nan,
                    "max": float(np.nanmax(values)) if valid and values is not None else np.nan,
                    "valid_min": modality.valid_range[0],
                    "valid_max": modality.valid_range[1],
                }
            )
    return pd.DataFrame(rows)


def failing_tiles(table: pd.DataFrame, recipe: TilesRecipe) -> dict[str, list[str]]:
    """Run the ``tile`` suite over ``table`` once; per failing tile, each failed expectation with the row's values."""
    if table.empty:
        return {}
    results = _validate(widened(table), {"footprint_tolerance_px": recipe.build.footprint_tolerance_px})
    reasons: dict[str, list[str]] = {}
    for result in results:
        if result.success:
            continue
        config = result.expectation_config
        name = (config.meta or {}).get("name", config.type)
        columns = [config.kwargs[k] for k in ("column_A", "column_B", "column") if k in config.kwargs]
        failed_rows = (result.result or {}).get("unexpected_index_list")
        if result.exception_info and result.exception_info.get("raised_exception"):
            raise RuntimeError(f"expectation {name} could not run: {result.exception_info.get('exception_message')}")
        if failed_rows is None:
            raise RuntimeError(f"expectation {name} failed without naming its rows")
        for row in failed_rows:
            record = table.iloc[int(row)]
            values = ", ".join(f"{c}={_plain(record[c])!r}" for c in columns)
            where = "" if set(columns) <= _TILE_COLUMNS else f" ({record['modality']})"
            reasons.setdefault(str(record["tile_id"]), []).append(f"{SUITE}.{name} failed{where}: {values}")
    # a tile-level failure once, not once per modality
    return {tile: list(dict.fromkeys(found)) for tile, found in reasons.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _validate(table: pd.DataFrame, parameters: dict[str, Any]) -> list[Any]:
    """The suite's results on ``table`` (complete, with failing row indices), in an ephemeral GX context."""
    import great_expectations as gx

    with _GX_LOCK:  # one GX context per process; its data source is not safe to share between threads
        if not _GX:
            logging.getLogger("great_expectations").setLevel(logging.ERROR)
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]  # GX takes the mapping
            asset = context.data_sources.add_pandas("tiles").add_dataframe_asset(SUITE)
            _GX["batch"] = asset.add_batch_definition_whole_dataframe("rows")
            _GX["suite"] = _gx_suite(load_suite(SUITE))
        batch = _GX["batch"].get_batch(batch_parameters={"dataframe": table.reset_index(drop=True)})
        run = batch.validate(_GX["suite"], result_format="COMPLETE", expectation_parameters=parameters)
    return list(run.results)
