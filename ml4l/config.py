"""Recipes: the declarative description of a lake's first month, grid and sample inputs.

A recipe is a small YAML mapping. The embedded ``demo`` recipe is the default of
``make demo`` and of the tests; a path to another YAML file can be given instead.
Every use case loads its typed recipe through :func:`load_typed_recipe`, and LST through
:func:`load_recipe`: both read with :func:`read_recipe_source`, and a bad value raises
:class:`RecipeError` naming the file and the dotted field.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from ml4l.types import Month, PathLike

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def check_month(month: str) -> Month:
    """Return ``month`` if it is a ``YYYY-MM`` string, else raise ``ValueError``."""
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return month


@dataclass(frozen=True)
class Period:
    """A lake's months: the first month of its ERA store, then consecutive months, each
    covering its first ``days`` days (all days when ``None``; a shorter month has all of its own), hourly.

    The store is not bounded by ``end``: it grows as later months are ingested.
    ``end`` (default: ``start``) only sets the months that runs naming none take,
    e.g. what ``make demo`` samples.
    """

    start: Month
    end: Month | None = None
    days: int | None = None

    def __post_init__(self) -> None:
        check_month(self.start)
        if self.end is not None and check_month(self.end) < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        if self.days is not None and not 1 <= self.days <= 31:
            raise ValueError(f"days per month must be within 1..31, got {self.days}")

    @property
    def months(self) -> list[Month]:
        """The default months, ``start`` to ``end``, ``YYYY-MM``."""
        return self.months_through(self.end or self.start)

    def months_through(self, last: Month) -> list[Month]:
        """Every month from ``start`` to ``last``, inclusive (empty if ``last`` is before ``start``)."""
        return [str(p) for p in pd.period_range(self.start, check_month(last), freq="M")]

    def days_of(self, month: Month) -> pd.DatetimeIndex:
        """The days of ``month`` that belong to the lake."""
        first = pd.Timestamp(check_month(month) + "-01")
        count = first.days_in_month if self.days is None else min(self.days, first.days_in_month)  # days: 31 is every day
        return pd.date_range(first, periods=count, freq="D")

    def hours_of(self, month: Month) -> pd.DatetimeIndex:
        """Every hour (UTC) of ``month`` that belongs to the lake."""
        days = self.days_of(month)
        return pd.date_range(days[0], periods=24 * len(days), freq="h")

    def hours_before(self, month: Month) -> int:
        """How many of the lake's hours come before ``month``: where ``month`` starts on a time axis from ``start``."""
        if check_month(month) < self.start:
            raise ValueError(f"month {month} is before the first month {self.start}")
        return sum(24 * len(self.days_of(m)) for m in self.months_through(month)[:-1])

    @property
    def hours(self) -> pd.DatetimeIndex:
        """Every hour of the default months."""
        return pd.DatetimeIndex(np.concatenate([self.hours_of(m).values for m in self.months]))


@dataclass(frozen=True)
class SampleConfig:
    """How the synthetic sample inputs are made."""

    modis_resolution: float = 0.25
    """MODIS pixel size in degrees (the real product: 1/30)."""
    seed: int = 20190101
    modis_formats: tuple[str, ...] = ("tif",)
    """``tif`` and ``nc`` write the global grid; ``hdf`` writes NASA's HDF4 tiles ``modis_tiles``."""
    bits_per_value: int = 16
    modis_tiles: tuple[str, ...] = ()
    """Sinusoidal tiles (``h18v04``) written by the ``hdf`` format, at ``modis_resolution`` (x 111 km) cells."""


_TYPED = ConfigDict(strict=True, extra="forbid")
"""Recipe sections checked by pydantic: exact types (``"1e9"`` is a string, not a number), no unknown keys."""


@pydantic_dataclass(frozen=True, config=_TYPED)
class JoinConfig:
    """How MODIS pixels are matched to ERA cells.

    Attributes
    ----------
    threshold_km : float
        Matches farther than this are dropped (seed 000: 50 km on N320); finite, within (0, 500].
    lat_limit : float or None
        Pixels with ``|lat| >= lat_limit`` are dropped (seed 000 keeps ``|lat| < 70``).
    engine : str
        Nearest-point engine: ``auto``, ``grid``, ``faiss`` or ``balltree``.
    max_lst_error_k : int or None
        MODIS QC filter: keep pixels whose LST error class is at most 1, 2 or 3 K
        (``None``: every produced pixel); pixels not produced are always dropped.
    """

    threshold_km: Annotated[float, Field(gt=0, le=500, allow_inf_nan=False)] = 50.0
    lat_limit: Annotated[float, Field(gt=0, le=90, allow_inf_nan=False)] | None = 70.0
    engine: Literal["auto", "grid", "faiss", "balltree"] = "auto"
    max_lst_error_k: Literal[1, 2, 3] | None = 3


class RecipeError(ValueError):
    """A recipe is missing or holds a bad value: a configuration error, never retried nor quarantined.

    The message names the recipe file and the field (``join.threshold_km``).
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"recipe {source}: {problem}")


def field_problems(error: ValidationError, section: str | None = None) -> str:
    """Each failed field as ``field <dotted.path>: <message> (got <value>)``, joined by ``; ``.

    ``section`` prefixes the path (``join``); a check on a whole model names the model's path,
    ``(top)`` at the root. A missing field or a whole section shows no value.
    """

    def problem(entry: Any) -> str:
        path = ".".join([*([section] if section else []), *(str(p) for p in entry["loc"])]) or "(top)"
        value = entry["input"]
        shown = "" if isinstance(value, (dict, list, tuple)) or entry["type"] == "missing" else f" (got {value!r})"
        return f"field {path}: {entry['msg']}{shown}"

    return "; ".join(problem(e) for e in error.errors())


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


TRAIN_LOSSES = ("mse", "huber", "mae")
"""Keras's names of the losses :class:`TrainConfig` trains with."""


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
    loss : str
        Training loss on the prediction in K (early stopping watches it on validation):
        ``mse`` (seed 000's), ``huber`` (squared within 1 K of the target, absolute beyond) or ``mae``.
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
    loss: str = "mse"
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
        if self.loss not in TRAIN_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(TRAIN_LOSSES)}, got {self.loss!r}")
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
        out["sample"]["modis_tiles"] = list(self.sample.modis_tiles)
        return out


def recipe_from_dict(data: dict[str, Any], source: str = "<mapping>") -> Recipe:
    """Build a recipe from a mapping, as read from YAML; a bad value raises :class:`RecipeError` naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise RecipeError(source, f"expected a mapping of sections, got {type(data).__name__}")
    for key in ("name", "grid", "period"):
        if key not in data:
            raise RecipeError(source, f"{key}: missing")
    for section in ("period", "sample", "join", "split", "train"):
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise RecipeError(source, f"{section}: expected a mapping, got {data[section]!r}")
    try:
        return _recipe(data)
    except ValidationError as exc:
        raise RecipeError(source, field_problems(exc, "join")) from exc
    except (TypeError, ValueError) as exc:  # the other sections' own checks, e.g. an unknown key or a reversed period
        raise RecipeError(source, str(exc)) from exc


def _recipe(data: dict[str, Any]) -> Recipe:
    sample = dict(data.get("sample") or {})
    for listed in ("modis_formats", "modis_tiles"):
        if listed in sample:
            sample[listed] = tuple(sample[listed])
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


def read_recipe_source(source: str | PathLike, embedded: str | None = "ml4l.recipes") -> tuple[Any, str]:
    """The parsed YAML of a recipe, and the name of where it came from.

    ``source`` is a ``.yaml``/``.yml`` path, or the name of a recipe embedded in the
    package ``embedded``; with ``embedded=None`` every source is a path.

    Raises
    ------
    RecipeError
        Naming the file: missing, not a file, not valid YAML, or no embedded recipe of that name.
    """
    path = Path(source)
    if embedded is None or path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise RecipeError(str(path), "no such file" if not path.exists() else "not a file")
        text, name = path.read_text(), str(path)
    else:
        resource = resources.files(embedded).joinpath(f"{source}.yaml")
        if not resource.is_file():
            raise RecipeError(str(source), "no embedded recipe of that name, and not a .yaml path")
        text, name = resource.read_text(), str(resource)
    try:
        return yaml.safe_load(text), name
    except yaml.YAMLError as exc:
        raise RecipeError(name, f"not valid YAML: {exc}") from exc


RecipeModel = TypeVar("RecipeModel", bound=BaseModel)


def load_typed_recipe(source: str | PathLike | None, model: type[RecipeModel]) -> RecipeModel:
    """A use case's typed recipe: ``model``'s defaults (``source=None``), or the YAML file ``source`` validated field by field.

    Raises
    ------
    RecipeError
        Naming the file, and each wrong field by its dotted path (``field split.buffer: ...``).
    """
    if source is None:
        return model()
    data, name = read_recipe_source(source, embedded=None)
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        raise RecipeError(name, field_problems(exc)) from exc


def load_recipe(name_or_path: str | PathLike = "demo") -> Recipe:
    """LST's recipe: an embedded one by name (``demo``, ``full``) or a YAML file by path."""
    data, source = read_recipe_source(name_or_path)
    return recipe_from_dict(data, source)
