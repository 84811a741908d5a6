"""The tiles recipe: one typed, validated description of a run (tiles, modalities, defects, platform, split, build).

Loaded once per flow run with :func:`load_recipe` (defaults, or a YAML file validated field by field)
and passed by value; every product stores it (HDF5 attrs, MLflow params and ``recipe.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml4l.config import load_typed_recipe

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Modality(_Strict):
    """One modality of the downloaded stack: its bands, in GeoTIFF order, and the range valid values lie in."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    bands: tuple[str, ...] = Field(min_length=1)
    valid_range: tuple[float, float]
    missing_share: float = Field(0.0, ge=0.0, lt=1.0, description="share of tiles where the modality is missing (no data)")

    @model_validator(mode="after")
    def _range_ordered(self) -> Modality:
        if self.valid_range[0] >= self.valid_range[1]:
            raise ValueError(f"valid_range {self.valid_range} must be (low, high) with low < high")
        return self


DEFAULT_MODALITIES = (
    Modality(name="sentinel2", bands=("B02", "B03", "B04", "B08", "B11"), valid_range=(0.0, 1.5)),
    Modality(name="sentinel1", bands=("VV", "VH"), valid_range=(-50.0, 10.0), missing_share=0.15),
    Modality(name="aster", bands=("elevation", "slope"), valid_range=(-500.0, 9000.0)),
    Modality(name="dynamic_world", bands=("label",), valid_range=(0.0, 8.0), missing_share=0.1),
    Modality(name="canopy_height", bands=("height",), valid_range=(0.0, 80.0)),
)


class TileSpec(_Strict):
    """Tiles sampled around land regions; tiles of a region may overlap."""

    count: int = Field(160, ge=6)
    regions: int = Field(32, ge=3)
    size_deg: float = Field(1.0, gt=0, le=5, description="tile edge, degrees")
    pixels: int = Field(16, ge=4, le=256, description="tile edge, pixels")
    spread_deg: float = Field(1.5, ge=0, description="tile centres lie within this many degrees of their region's centre")
    lat_limit: float = Field(60.0, gt=0, le=70, description="region centres within |lat| < lat_limit")


class DefectSpec(_Strict):
    """Tiles the sample damages, as real downloads are."""

    missing: int = Field(3, ge=0, description="no GeoTIFF and no tile_info")
    truncated: int = Field(2, ge=0, description="GeoTIFF cut short")
    corrupt: int = Field(2, ge=0, description="GeoTIFF header overwritten")
    wrong_band_count: int = Field(1, ge=0, description="GeoTIFF with one band fewer than its tile_info lists")
    late: int = Field(2, ge=0, description="missing at build time, delivered before the retry (a re-download)")

    @property
    def total(self) -> int:
        return self.missing + self.truncated + self.corrupt + self.wrong_band_count + self.late


class PlatformSpec(_Strict):
    """The platform's own inputs (ERA GRIB, MODIS), written and ingested only when the lake has none.

    ``seed`` is the synthetic Earth's: the noise-free truth of the oracle assumes the lake's MODIS was
    made by it (the LST demo recipe's seed, so the LST demo's lake serves as well).
    """

    grid: str = "O48"
    start: str = Field("2019-01", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    end: str = Field("2019-02", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    days: int = Field(2, ge=1, le=28, description="first days of each month")
    modis_resolution: float = Field(0.5, gt=0, le=2)
    seed: int = 20190101


class SplitSpec(_Strict):
    """Seeded split by group: a group is a region plus every tile overlapping one of its tiles."""

    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 3


class StatsSpec(_Strict):
    percentiles: tuple[float, ...] = (1.0, 50.0, 99.0)


class BuildSpec(_Strict):
    workers: int = Field(2, ge=1, description="Dask threads preparing tiles")
    batch: int = Field(64, ge=1, description="tiles read, checked and committed together")
    compression_level: int = Field(4, ge=0, le=9, description="gzip level of the HDF5 datasets")
    footprint_tolerance_px: float = Field(0.01, gt=0, description="largest raster-to-GeoJSON corner offset, pixels")


class RetrySpec(_Strict):
    """``tiles-retry-failed``: attempts per failed tile, waiting ``base_delay_s * 2**k`` before retry ``k``."""

    max_attempts: int = Field(3, ge=1)
    base_delay_s: float = Field(0.5, ge=0)


class ModelSpec(_Strict):
    """Ridge regression on per-tile band means; the validation set picks ``alpha``."""

    alphas: tuple[float, ...] = Field((0.01, 0.1, 1.0, 10.0, 100.0), min_length=1)


class TilesRecipe(_Strict):
    """Everything a tiles run is built from."""

    kind: Literal["tiles"] = "tiles"
    name: str = Field("demo", pattern=_NAME)
    seed: int = 20190101
    tiles: TileSpec = TileSpec()
    modalities: tuple[Modality, ...] = DEFAULT_MODALITIES
    defects: DefectSpec = DefectSpec()
    platform: PlatformSpec = PlatformSpec()
    split: SplitSpec = SplitSpec()
    stats: StatsSpec = StatsSpec()
    build: BuildSpec = BuildSpec()
    retry: RetrySpec = RetrySpec()
    model: ModelSpec = ModelSpec()

    @model_validator(mode="after")
    def _consistent(self) -> TilesRecipe:
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise ValueError(f"modality names must be unique, got {names}")
        if self.defects.total > self.tiles.count // 2:
            raise ValueError(f"{self.defects.total} damaged tiles is more than half of {self.tiles.count}")
        if self.tiles.regions > self.tiles.count:
            raise ValueError(f"{self.tiles.regions} regions for {self.tiles.count} tiles")
        return self

    @property
    def band_names(self) -> list[str]:
        """Every band of the GeoTIFF stack as ``<modality>:<band>``, in file order."""
        return [f"{m.name}:{b}" for m in self.modalities for b in m.bands]


def load_recipe(source: str | Path | None = None) -> TilesRecipe:
    """The defaults (``None``), or the YAML file ``source``; an error names the file and each field (:class:`~ml4l.config.RecipeError`)."""
    return load_typed_recipe(source, TilesRecipe)
