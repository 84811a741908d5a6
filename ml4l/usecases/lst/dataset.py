"""ML-ready sets from joined months: time-range splits, optional held-out spatial blocks, deltas, normalisation.

One Parquet per split under ``ml/<name>/``, with the features normalised by
statistics fitted on the training split only, and those statistics, the feature
list and the split definition in ``ml/<name>/normalisation.json``. Each file is
written in row groups of :data:`SHARD_ROWS` rows, so it serves both of seed 000's
paths: "greedy" reads a split whole (:func:`read_split`), "streaming" reads one
row group at a time (:func:`split_shards`).

Rows keep ``time``, ``cell``, ``latitude``, ``longitude``, the target ``lst`` (K) and
``skt_raw`` (ERA skin temperature in K, the baseline) next to the normalised features.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml4l.config import SplitConfig
from ml4l.errors import InputError
from ml4l.join import FEATURE_COLUMNS, read_joined
from ml4l.lake import Lake
from ml4l.quality import refuse_quarantined
from ml4l.types import Month
from ml4l.variables import CONSTANT, LAKE_COVER

SPLITS = ("train", "validation", "test")
KEY_COLUMNS = ("time", "cell", "latitude", "longitude")
TARGET = "lst"
BASELINE = "skt_raw"
DELTA_COLUMNS: tuple[str, ...] = (*(f"{v.name}_delta" for v in CONSTANT), f"{LAKE_COVER.name}_delta")
"""V20 minus V15 for every constant, and the month's lake cover minus V20's."""


@dataclass
class MLReady:
    """What :func:`build_ml_ready` wrote."""

    name: str
    directory: str
    rows: dict[str, int]
    months: dict[str, list[Month]]
    features: list[str]
    dropped_constant: list[str]
    mean: dict[str, float] = field(repr=False)
    std: dict[str, float] = field(repr=False)
    split: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def joined_months(lake: Lake) -> list[Month]:
    """Months with a joined table."""
    found = lake.fs.glob(lake.joined_table("*"))
    months = []
    for path in found:
        parts = path.split("/")
        months.append(f"{parts[-3].removeprefix('year=')}-{parts[-2].removeprefix('month=')}")
    return sorted(months)


def with_deltas(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the V20 - V15 deltas and the lake-cover delta."""
    deltas = {f"{v.name}_delta": frame[f"{v.name}_v20"] - frame[f"{v.name}_v15"] for v in CONSTANT}
    deltas[f"{LAKE_COVER.name}_delta"] = frame[LAKE_COVER.name] - frame["cl_v20"]
    return frame.assign(**deltas)


def heldout_blocks(latitude: np.ndarray, longitude: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Whether each point lies in a held-out 10-degree block (a fixed random share of the 648 blocks)."""
    block = (np.floor((np.asarray(latitude) + 90.0) / 10.0).clip(0, 17) * 36 + np.floor((np.asarray(longitude) % 360.0) / 10.0)).astype(int)
    chosen = np.random.default_rng(seed).random(18 * 36) < fraction
    return chosen[block]


SHARD_ROWS = 65_536
"""Rows per Parquet row group: the shard that the streaming path reads at a time."""


@dataclass
class _Moments:
    """Count, mean and sum of squared deviations per column, merged month by month (Chan et al.)."""

    count: int = 0
    mean: pd.Series | None = None
    m2: pd.Series | None = None

    def add(self, frame: pd.DataFrame) -> None:
        n = len(frame)
        if n == 0:
            return
        mean, m2 = frame.mean(), ((frame - frame.mean()) ** 2).sum()
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * n / total
        self.count = total

    def std(self) -> pd.Series:
        assert self.m2 is not None
        return np.sqrt(self.m2 / self.count)


def _split_month(lake: Lake, month: Month, split: str, config: SplitConfig) -> pd.DataFrame:
    frame = with_deltas(read_joined(lake, month))
    if config.heldout_block_fraction > 0:
        held = heldout_blocks(frame["latitude"].to_numpy(), frame["longitude"].to_numpy(), config.heldout_block_fraction, config.seed)
        frame = frame[held] if split == "test" else frame[~held]
    return frame.reset_index(drop=True)


def rejected_path(lake: Lake, name: str) -> str:
    """Where an ML-ready set that failed validation is kept for inspection (the published set is untouched)."""
    return lake.rejected("ml_ready", name)


def build_ml_ready(lake: Lake, config: SplitConfig, name: str = "default", validate: Callable[[str], object] | None = None) -> MLReady:
    """Build ``ml/<name>/{train,validation,test}.parquet`` and ``normalisation.json`` from joined months.

    Memory is bounded by one joined month: a first pass over the training months
    fits the normalisation, a second writes each split month by month, in row
    groups of :data:`SHARD_ROWS` rows (the streaming path's shards).

    ``validate(set_name)`` checks the new set under its hidden name in ``ml/`` before it
    is published; if it raises, the published set stays as it was and the new one is kept
    at :func:`rejected_path`. Leftovers of killed builds of ``name`` are swept first.

    Raises
    ------
    QuarantinedError
        If a month of any split is quarantined.
    ValueError
        If a split has no month or no row.
    """
    available = joined_months(lake)
    months: dict[str, list[Month]] = {}
    for split in SPLITS:
        months[split] = config.months(split, available)
        if not months[split]:
            raise ValueError(f"no joined month in the {split} range {getattr(config, split)} (joined: {available or 'none'})")
        for month in months[split]:
            refuse_quarantined(lake, "joined_month", month)

    candidates = [*FEATURE_COLUMNS, *DELTA_COLUMNS]
    moments = _Moments()
    for month in months["train"]:
        moments.add(_split_month(lake, month, "train", config)[candidates].astype(np.float64))
    if moments.count == 0:
        raise ValueError("the train split has no rows")
    std = moments.std()
    constant = sorted(std.index[~(std > 1e-12)])
    features = [c for c in candidates if c not in constant]
    assert moments.mean is not None
    mean, std = moments.mean[features], std[features]

    directory = lake.ml_ready(name)
    lake.remove_stale_staging(directory)
    rows = dict.fromkeys(SPLITS, 0)
    check = None if validate is None else (lambda staged: validate(staged.rsplit("/", 1)[-1]))
    with lake.replace_whole(directory, check, rejected_path(lake, name)) as staging:
        lake.fs.makedirs(staging, exist_ok=True)
        for split in SPLITS:
            with lake.fs.open(f"{staging}/{split}.parquet", "wb") as out:
                writer: pq.ParquetWriter | None = None
                for month in months[split]:
                    frame = _split_month(lake, month, split, config)
                    normalised = ((frame[features].astype(np.float64) - mean) / std).astype(np.float32)
                    table = pa.Table.from_pandas(
                        pd.concat([frame[list(KEY_COLUMNS)], frame[[TARGET]], frame["skt"].rename(BASELINE), normalised], axis=1),
                        preserve_index=False,
                    )
                    writer = writer or pq.ParquetWriter(out, table.schema)
                    writer.write_table(table, row_group_size=SHARD_ROWS)
                    rows[split] += len(frame)
                if writer is not None:
                    writer.close()
            if rows[split] == 0:
                raise ValueError(f"the {split} split has no rows")
        result = MLReady(
            name=name,
            directory=directory,
            rows=rows,
            months=months,
            features=features,
            dropped_constant=constant,
            mean={k: float(v) for k, v in mean.items()},
            std={k: float(v) for k, v in std.items()},
            split=asdict(config),
        )
        with lake.fs.open(f"{staging}/normalisation.json", "w") as out:
            json.dump(result.to_dict(), out, indent=2)
    return result


def shard_count(lake: Lake, split: str, name: str = "default") -> int:
    """How many row groups (shards) a split has."""
    with lake.fs.open(lake.ml_split(name, split), "rb") as source:
        return int(pq.ParquetFile(source).num_row_groups)


def split_rows(lake: Lake, split: str, name: str = "default") -> int:
    """How many rows a split has, from the Parquet footer."""
    with lake.fs.open(lake.ml_split(name, split), "rb") as source:
        return int(pq.ParquetFile(source).metadata.num_rows)


def read_shard(lake: Lake, split: str, index: int, name: str = "default", columns: list[str] | None = None) -> pd.DataFrame:
    """Row group ``index`` of one split."""
    with lake.fs.open(lake.ml_split(name, split), "rb") as source:
        return pq.ParquetFile(source).read_row_group(index, columns=columns).to_pandas()


def split_shards(lake: Lake, split: str, name: str = "default", columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The row groups of one split, one at a time: the streaming path never holds more."""
    for index in range(shard_count(lake, split, name)):
        yield read_shard(lake, split, index, name, columns)


def read_split(lake: Lake, split: str, name: str = "default") -> pd.DataFrame:
    """One split of an ML-ready set."""
    with lake.fs.open(lake.ml_split(name, split), "rb") as source:
        return pd.read_parquet(source)


def read_normalisation(lake: Lake, name: str = "default") -> dict[str, Any]:
    """The recorded features, normalisation statistics and split definition.

    Raises
    ------
    InputError
        If there is no ML-ready set ``name``, saying which stage makes it.
    """
    path = lake.ml_normalisation(name)
    if not lake.fs.exists(path):
        raise InputError(
            lake.ml_ready(name), f"no ML-ready set {name!r}: build it first with `ml4l dataset --name {name}` (the dataset flow)"
        )
    with lake.fs.open(path) as source:
        return dict(json.load(source))


def ml_ready_table(lake: Lake, name: str = "default") -> pd.DataFrame:
    """Facts the ``ml_ready`` suite checks: one row per (split, column) of every split.

    Columns: ``split, column, kind`` (``feature``, ``target``, ``baseline``), ``nan_count``,
    ``mean``, ``std``, and ``overlapping_splits``: how many other splits' time ranges
    intersect this split's.
    """
    splits = {s: read_split(lake, s, name) for s in SPLITS}
    features = read_normalisation(lake, name)["features"]
    spans = {s: (f["time"].min(), f["time"].max()) for s, f in splits.items()}
    rows = []
    for split, frame in splits.items():
        first, last = spans[split]
        overlapping = sum(1 for other, (a, b) in spans.items() if other != split and a <= last and first <= b)
        for column in [TARGET, BASELINE, *features]:
            values = frame[column].to_numpy(dtype=np.float64)
            kind = "target" if column == TARGET else "baseline" if column == BASELINE else "feature"
            rows.append(
                {
                    "split": split,
                    "column": column,
                    "kind": kind,
                    "nan_count": int(np.isnan(values).sum()),
                    "mean": float(np.nanmean(values)),
                    "std": float(np.nanstd(values)),
                    "overlapping_splits": overlapping,
                }
            )
    return pd.DataFrame(rows)
