"""The downscaling recipe (seed 002): sample grid, patches, the seed's feature-scaling config, split, model.

The defaults are the demo. A YAML file overrides any part; the ``feature_scaling`` section has the
seed's form (``day_cos: raw``, ``long: normalize``, ...). Validation happens at load, and an error
names the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ml4l.config import load_typed_recipe

Scaling = Literal["normalize", "standardize", "raw"]
Band = Literal["night", "day", "mean"]
SplitKind = Literal["day", "block", "day_x_block"]

PATCH = 9
"""The seed's patch: 9 x 9 pixels around the centre."""
WINDOW_RADIUS = PATCH // 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleSpec(_Strict):
    """Where the synthetic inputs sit on the seed's 603 x 409 grid, and which days they hold."""

    year: int = 2020
    rows: int = Field(default=150, ge=2 * PATCH, le=603)
    cols: int = Field(default=120, ge=2 * PATCH, le=409)
    row_offset: int = Field(default=240, ge=0)
    """First row (south to north) of the demo window on the seed grid: 240 is about 31.0 N."""
    col_offset: int = Field(default=160, ge=0)
    """First column (west to east): 160 is about 34.53 E, so the window holds coast, ridge and rift."""
    day_step: int = Field(default=12, ge=1)
    """Every ``day_step``-th day of the year is written (1: every day, as the seed's files)."""
    skipped_days: tuple[int, ...] = (24, 204)
    """Days of the year (0-based) missing from the file, as in the seed's 2020 file."""
    noise_k: float = Field(default=0.5, gt=0)
    """Sensor noise, K (standard deviation)."""
    seed: int = 2020

    @model_validator(mode="after")
    def _inside_seed_grid(self) -> SampleSpec:
        if self.row_offset + self.rows > 603 or self.col_offset + self.cols > 409:
            raise ValueError(f"rows {self.row_offset}+{self.rows} / cols {self.col_offset}+{self.cols} leave the seed's 603 x 409 grid")
        return self


class PatchSpec(_Strict):
    """Which LST bands give targets; each band's own QA codes decide a valid pixel."""

    bands: tuple[Band, ...] = ("day", "night")

    @field_validator("bands")
    @classmethod
    def _distinct(cls, bands: tuple[Band, ...]) -> tuple[Band, ...]:
        if not bands or len(set(bands)) != len(bands):
            raise ValueError(f"bands must be one or more distinct of night, day, mean, got {bands}")
        return bands


class FeatureScaling(_Strict):
    """The seed's YAML ``feature_scaling`` section (its best configuration as defaults), plus time of day.

    Every scaler is fitted on the training rows only; the 81 height differences share one scaler.
    """

    day_cos: Scaling = "raw"
    day_sin: Scaling = "raw"
    time_cos: Scaling = "raw"
    time_sin: Scaling = "raw"
    long: Scaling = "normalize"
    lat: Scaling = "normalize"
    lst_avg: Scaling = "standardize"
    height_avg: Scaling = "normalize"
    height_diffs: Scaling = "normalize"


class SplitSpec(_Strict):
    """The split the model is trained and scored on; the dataset stores all three kinds."""

    kind: SplitKind = "day_x_block"
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    """Train, validation, test shares of days and of blocks (``day_x_block`` crosses both)."""
    block: int = Field(default=20, ge=PATCH)
    """Spatial block side, pixels."""
    buffer: int = Field(default=2 * WINDOW_RADIUS, ge=2 * WINDOW_RADIUS)
    """Chebyshev distance, in pixels, kept free around test (and validation) centres. 9 x 9 windows of
    centres closer than 9 pixels share pixels, so at least 8 is needed for disjoint windows; the
    window radius alone (4) keeps training centres out of test windows but not their windows."""
    seed: int = 2

    @field_validator("fractions")
    @classmethod
    def _shares(cls, fractions: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
            raise ValueError(f"fractions must be three positive shares summing to 1, got {fractions}")
        return fractions


class ModelSpec(_Strict):
    """The seed's MLP: Dense, batch norm before ReLU, Adam, learning rate halved every 10 epochs, early stopping.

    The seed used 1024-512-256-128 and batch 128; the demo's defaults are smaller to train in seconds.
    """

    hidden: tuple[int, ...] = (256, 128, 64)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    batch_size: int = Field(default=512, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    epochs: int = Field(default=40, ge=1)
    patience: int = Field(default=6, ge=1)
    halve_every: int = Field(default=10, ge=1)
    seed: int = 0


class DownscaleRecipe(_Strict):
    """Everything that defines a downscaling run; stored with every product it builds."""

    kind: Literal["downscale"] = "downscale"
    name: str = Field(default="demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    sample: SampleSpec = SampleSpec()
    patches: PatchSpec = PatchSpec()
    feature_scaling: FeatureScaling = FeatureScaling()
    split: SplitSpec = SplitSpec()
    model: ModelSpec = ModelSpec()


def load_recipe(source: str | Path | None = None) -> DownscaleRecipe:
    """The defaults (``None``), or the YAML file ``source``; an error names the file and each field (:class:`~ml4l.config.RecipeError`)."""
    return load_typed_recipe(source, DownscaleRecipe)
