"""The typed recipe of the assimilation use case."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ml4l.config import load_typed_recipe


class FieldsConfig(BaseModel):
    """Synthetic daily anomaly fields on a regular lat-lon grid (the demo's truth; see ``fields``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    resolution_deg: float = Field(2.0, gt=0.5, le=5.0)
    lat_south: float = Field(20.0, ge=-90, lt=90)
    lon_west: float = Field(-30.0, ge=-180, lt=360)
    ny: int = Field(32, ge=8, le=128)
    nx: int = Field(32, ge=8, le=256)
    first_year: int = 2001
    years: int = Field(14, ge=3)
    correlation_km: float = Field(2000.0, gt=0)
    """e-folding length of the latent Gaussian field's correlation."""
    persistence: float = Field(0.7, ge=0, lt=1)
    """lag-1 day autocorrelation of the latent field."""
    std_winter_k: float = Field(4.5, gt=0)
    std_summer_k: float = Field(2.5, gt=0)
    front_sharpness: float = Field(2.5, ge=0)
    """0 gives Gaussian fields; larger values give air masses separated by sharper fronts."""
    seed: int = 4

    @model_validator(mode="after")
    def _inside_globe(self) -> FieldsConfig:
        if self.lat_south + self.ny * self.resolution_deg > 90 + 1e-9:
            raise ValueError(f"the grid reaches latitude {self.lat_south + self.ny * self.resolution_deg} > 90")
        return self


class StationsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dense: int = Field(160, ge=0)
    """stations in the dense region (the grid's western half, as Europe's networks are dense)."""
    sparse: int = Field(40, ge=0)
    sigma_o: float = Field(0.5, gt=0)
    """observation error standard deviation, K."""
    seed: int = 40


class SplitYears(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    train: tuple[int, int] = (2001, 2012)
    validation: tuple[int, int] = (2013, 2013)
    test: tuple[int, int] = (2014, 2014)
    gap_days: int = Field(30, ge=0)


class VAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    latent: int = Field(24, ge=2, le=256)
    beta: float = Field(1.0, gt=0)
    filters: tuple[int, int, int] = (8, 16, 32)
    """channels of the encoder's three stride-2 convolutions (the decoder mirrors them)."""
    dense: int = Field(64, ge=8)
    """width of the dense layer between the convolutions and the latent vector."""
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    patience: int = Field(10, ge=1)
    halve_every: int | None = Field(20, ge=1)
    """halve the learning rate every this many epochs; ``None`` keeps it constant."""
    seed: int = 0


class AnalysisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    members: int = Field(25, ge=2)
    iterations: int = Field(150, ge=1)
    """Adam steps of the MAP search from the origin."""
    learning_rate: float = Field(0.1, gt=0)
    member_iterations: int = Field(40, ge=0)
    """Adam steps of each member from its linearised (Laplace) start."""
    member_learning_rate: float = Field(0.02, gt=0)
    test_days: int = Field(40, ge=1)
    """test days assimilated and scored (evenly spaced over the test years)."""
    validation_days: int = Field(40, ge=1)
    """validation days on which the error inflation and the spread inflation are chosen."""
    error_inflations: tuple[float, ...] = (1.5, 2.0)
    """candidate factors on the generator error in the likelihood; the spread inflation is fitted for
    each, and the lowest validation CRPS wins (see ``pipeline.calibrate``)."""
    rank_thinning: int = Field(10, ge=1)
    """rank-histogram samples on a lattice of this many cells (shifted at random each day), so that they
    are nearly independent: on the demo's validation days the ranks of cells 4 apart correlate at 0.48,
    10 apart at 0.08."""
    seed: int = 7


class AssimilationRecipe(BaseModel):
    """Everything the use case needs; stored with each product (Zarr attrs, MLflow params and artifact)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["assimilation"] = "assimilation"
    fields: FieldsConfig = FieldsConfig()
    stations: StationsConfig = StationsConfig()
    split: SplitYears = SplitYears()
    vae: VAEConfig = VAEConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    model_name: str = Field("ml4l-assimilation-vae", pattern=r"^[A-Za-z0-9_.-]+$")

    @field_validator("model_name")
    @classmethod
    def _no_path(cls, value: str) -> str:
        if value in (".", ".."):
            raise ValueError("model_name cannot be . or ..")
        return value

    @model_validator(mode="after")
    def _years_inside(self) -> AssimilationRecipe:
        last = self.fields.first_year + self.fields.years - 1
        for name in ("train", "validation", "test"):
            a, b = getattr(self.split, name)
            if not (self.fields.first_year <= a <= b <= last):
                raise ValueError(f"split.{name} years {a}..{b} lie outside the fields' {self.fields.first_year}..{last}")
        if not math.isfinite(self.stations.sigma_o):
            raise ValueError("stations.sigma_o must be finite")
        return self


def load_recipe(source: str | Path | None = None) -> AssimilationRecipe:
    """The defaults (``None``), or the YAML file ``source``; an error names the file and each field (:class:`~ml4l.config.RecipeError`)."""
    return load_typed_recipe(source, AssimilationRecipe)
