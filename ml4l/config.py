"""Recipes: the declarative description of a lake's period, grid and sample inputs.

A recipe is a small YAML mapping. The embedded ``demo`` recipe is the default of
``make demo`` and of the tests; a path to another YAML file can be given instead.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ml4l.types import Month, PathLike

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def check_month(month: str) -> Month:
    """Return ``month`` if it is a ``YYYY-MM`` string, else raise ``ValueError``."""
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return month


@dataclass(frozen=True)
class Period:
    """Consecutive months, each covering its first ``days`` days (all days when ``None``), hourly."""

    start: Month
    end: Month
    days: int | None = None

    def __post_init__(self) -> None:
        check_month(self.start)
        check_month(self.end)
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        if self.days is not None and not 1 <= self.days <= 28:
            raise ValueError(f"days per month must be within 1..28, got {self.days}")

    @property
    def months(self) -> list[Month]:
        """Every month of the period, ``YYYY-MM``."""
        return [str(p) for p in pd.period_range(self.start, self.end, freq="M")]

    def days_of(self, month: Month) -> pd.DatetimeIndex:
        """The days of ``month`` that belong to the period."""
        first = pd.Timestamp(check_month(month) + "-01")
        count = first.days_in_month if self.days is None else self.days
        return pd.date_range(first, periods=count, freq="D")

    def hours_of(self, month: Month) -> pd.DatetimeIndex:
        """Every hour (UTC) of ``month`` that belongs to the period."""
        days = self.days_of(month)
        return pd.date_range(days[0], periods=24 * len(days), freq="h")

    @property
    def hours(self) -> pd.DatetimeIndex:
        """Every hour of the period."""
        return pd.DatetimeIndex(np.concatenate([self.hours_of(m).values for m in self.months]))


@dataclass(frozen=True)
class SampleConfig:
    """How the synthetic sample inputs are made."""

    modis_resolution: float = 0.25
    """MODIS pixel size in degrees (the real product: 1/30)."""
    seed: int = 20190101
    modis_formats: tuple[str, ...] = ("tif",)
    bits_per_value: int = 16


@dataclass(frozen=True)
class JoinConfig:
    """How MODIS pixels are matched to ERA cells.

    Attributes
    ----------
    threshold_km : float
        Matches farther than this are dropped (seed 000: 50 km on N320).
    lat_limit : float or None
        Pixels with ``|lat| >= lat_limit`` are dropped (seed 000 keeps ``|lat| < 70``).
    engine : str
        Nearest-point engine: ``auto``, ``grid``, ``faiss`` or ``balltree``.
    """

    threshold_km: float = 50.0
    lat_limit: float | None = 70.0
    engine: str = "auto"

    def __post_init__(self) -> None:
        if not self.threshold_km > 0:
            raise ValueError(f"threshold_km must be positive, got {self.threshold_km}")
        if self.lat_limit is not None and not 0 < self.lat_limit <= 90:
            raise ValueError(f"lat_limit must be within (0, 90], got {self.lat_limit}")
        if self.engine not in ("auto", "grid", "faiss", "balltree"):
            raise ValueError(f"unknown engine {self.engine!r}: expected auto, grid, faiss or balltree")


@dataclass(frozen=True)
class SplitConfig:
    """Which months go to which split, and whether test cells are held out in space.

    Attributes
    ----------
    train, validation, test : tuple of (first month, last month)
        Inclusive ``YYYY-MM`` ranges; they must not overlap.
    heldout_block_fraction : float
        Share of 10-degree lat-lon blocks kept out of train and validation and used
        alone for test (0: no spatial hold-out).
    seed : int
        Chooses the held-out blocks.
    """

    train: tuple[Month, Month]
    validation: tuple[Month, Month]
    test: tuple[Month, Month]
    heldout_block_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        ranges = [self.train, self.validation, self.test]
        for first, last in ranges:
            if check_month(first) > check_month(last):
                raise ValueError(f"split range {first}..{last} ends before it starts")
        ordered = sorted(ranges)
        for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
            if start <= end:
                raise ValueError(f"split ranges overlap: {ordered}")
        if not 0.0 <= self.heldout_block_fraction < 1.0:
            raise ValueError("heldout_block_fraction must be within [0, 1)")

    def months(self, split: str, available: list[Month]) -> list[Month]:
        """The available months of ``split``."""
        first, last = getattr(self, split)
        return [m for m in available if first <= m <= last]


@dataclass(frozen=True)
class TrainConfig:
    """The MLP and its optimisation; the defaults are seed 000's, with a linear anchor.

    Attributes
    ----------
    layers, width : int
        ReLU layers and their units; ``width`` 0 means half the number of features, as in the seed.
    dropout : float
        Dropout rate after each hidden layer (0: none).
    batch_norm : bool
        Batch normalisation before each activation.
    learning_rate, schedule : float, str
        Adam's rate, ``constant`` or decayed to 0 by ``cosine`` over ``epochs``.
    batch_size, epochs, patience : int
        Early stopping on validation loss restores the best epoch's weights.
    seed : int
        Seeds Python, NumPy and the backend, and the shard order of the streaming path.
    linear_anchor : bool
        Add a trainable linear path from the inputs to the output, initialised with
        the least-squares fit, and start the MLP's output layer at zero: the network
        learns what the linear model leaves, and starts no worse than it. The seed's
        plain MLP is ``linear_anchor=False``.
    streaming : bool
        Feed training and validation through ``tf.data`` one shard at a time instead
        of holding the splits in memory.
    shuffle_rows : int
        Streaming only: rows in the shuffle buffer (shards are also visited in a new
        random order each epoch).
    """

    layers: int = 4
    width: int = 0
    dropout: float = 0.0
    batch_norm: bool = False
    learning_rate: float = 1e-3
    schedule: str = "constant"
    batch_size: int = 1024
    epochs: int = 200
    patience: int = 20
    seed: int = 0
    linear_anchor: bool = True
    streaming: bool = False
    shuffle_rows: int = 65_536

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be constant or cosine, got {self.schedule!r}")
        if self.layers < 1 or self.width < 0 or not 0 <= self.dropout < 1:
            raise ValueError("layers must be >= 1, width >= 0 and dropout within [0, 1)")


@dataclass(frozen=True)
class Recipe:
    """Everything a lake is built from."""

    name: str
    grid: str
    period: Period
    sample: SampleConfig = field(default_factory=SampleConfig)
    join: JoinConfig = field(default_factory=JoinConfig)
    split: SplitConfig | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping, as written in YAML."""
        out = asdict(self)
        out["sample"]["modis_formats"] = list(self.sample.modis_formats)
        return out


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """Build a recipe from a mapping, as read from YAML."""
    sample = dict(data.get("sample") or {})
    if "modis_formats" in sample:
        sample["modis_formats"] = tuple(sample["modis_formats"])
    return Recipe(
        name=str(data["name"]),
        grid=str(data["grid"]),
        period=Period(**data["period"]),
        sample=SampleConfig(**sample),
        join=JoinConfig(**(data.get("join") or {})),
        split=_split_config(data.get("split")),
        train=TrainConfig(**(data.get("train") or {})),
    )


def _split_config(data: dict[str, Any] | None) -> SplitConfig | None:
    if not data:
        return None
    ranges = {name: tuple(data[name]) for name in ("train", "validation", "test")}
    extra = {k: v for k, v in data.items() if k not in ranges}
    return SplitConfig(**ranges, **extra)  # type: ignore[arg-type]


def load_recipe(name_or_path: str | PathLike = "demo") -> Recipe:
    """Load an embedded recipe by name (``demo``, ``full``) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        text = path.read_text()
    else:
        resource = resources.files("ml4l.recipes").joinpath(f"{name_or_path}.yaml")
        if not resource.is_file():
            raise ValueError(f"no embedded recipe called {name_or_path!r}")
        text = resource.read_text()
    return recipe_from_dict(yaml.safe_load(text))
