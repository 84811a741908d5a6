"""The gap-filling recipe: one typed, validated description of a run (cube, split, features, model, fill).

Loaded once per flow run with :func:`load_recipe` (defaults, or a YAML file validated field by field)
and passed by value; every product stores it (Zarr attrs, MLflow params and ``recipe.json``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml4l.config import load_typed_recipe

ModelName = Literal["mlp", "per_pixel_linear", "linear_t2m"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CubeSpec(_Strict):
    """The sample cube: a 1/12-degree region, 8-day steps (ESDC form)."""

    name: str = Field(default="sample", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    north: float = Field(default=52.0, ge=-90, le=90, description="northern edge, degrees")
    west: float = Field(default=-3.0, ge=-180, lt=180, description="western edge, degrees")
    rows: int = Field(default=60, ge=8)
    cols: int = Field(default=60, ge=8)
    start: dt.date = dt.date(2019, 1, 1)
    years: int = Field(default=2, ge=2, description="whole years of 46 eight-day steps each (ESDC: steps restart on 1 January)")
    noise_k: float = Field(default=1.0, gt=0, description="standard deviation of the LST noise around the truth, K")
    missing_share: float = Field(default=0.6, ge=0.5, le=0.7, description="mean share of land cells under cloud")
    seed: int = 20190101


class SplitSpec(_Strict):
    """Seeded space x time blocks; cells of other sets within ``buffer`` cells and ``time_buffer`` steps of a
    test (or validation) block are excluded."""

    block: int = Field(default=10, ge=2, description="block edge, cells")
    time_block: int = Field(default=4, ge=1, description="block length, steps")
    buffer: int = Field(default=10, ge=1, description="cells; at least one block edge")
    time_buffer: int = Field(default=1, ge=0)
    fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
    seed: int = 17

    @model_validator(mode="after")
    def _buffer_covers_a_block(self) -> SplitSpec:
        if self.buffer < self.block:
            raise ValueError(f"buffer ({self.buffer} cells) must be at least one block edge ({self.block} cells)")
        return self


class FeatureSpec(_Strict):
    """The neighbourhood read around each cell: observed LST within ``radius`` cells, same step."""

    radius: int = Field(default=2, ge=1, le=10)


class ModelSpec(_Strict):
    """The MLP and its optimisation (``ml4l.ml.trainer.fit``)."""

    hidden: tuple[int, ...] = (32, 32)
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=4096, ge=1)
    learning_rate: float = Field(default=2e-2, gt=0)
    patience: int = Field(default=5, ge=1)
    seed: int = 0


class FillSpec(_Strict):
    """How ``gapfill/<model>/lst_filled.zarr`` is written."""

    model: ModelName = "mlp"
    time_chunk: int = Field(default=8, ge=1, description="steps per chunk and per region write")


class GapfillRecipe(_Strict):
    """Everything a gap-filling run is built from."""

    kind: Literal["gapfill"] = "gapfill"
    name: str = Field(default="demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    source: Literal["sample", "lake"] = Field(
        default="sample", description="the generated cube, or one built from the lake's MODIS and ERA"
    )
    cube: CubeSpec = Field(default_factory=CubeSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    features: FeatureSpec = Field(default_factory=FeatureSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    fill: FillSpec = Field(default_factory=FillSpec)


def load_recipe(source: str | Path | None = None) -> GapfillRecipe:
    """The defaults (``None``), or the YAML file ``source``; an error names the file and each field (:class:`~ml4l.config.RecipeError`)."""
    return load_typed_recipe(source, GapfillRecipe)


def recipe_from_json(text: str) -> GapfillRecipe:
    """A recipe passed by value between tasks (``model_dump_json``)."""
    return GapfillRecipe.model_validate_json(text)
