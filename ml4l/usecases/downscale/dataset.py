"""The downscaling data set: float32 patch shards, three leakage-checked splits, train-only scalers.

Layout of ``downscale/datasets/<name>/`` (written aside, then swapped in whole)::

    shards/day-DDD.npz            features (n, 89) float32 raw, target (n,) K, oracle (n,) K,
                                  row, col (centre pixel), band (0 night, 1 day, 2 mean), one day each
    splits/<kind>/labels.npy      int8 per sample, in shard order (ml4l.ml.splits: 0 train, 1 validation,
                                  2 test, -1 excluded), kind = day | block | day_x_block
    splits/<kind>/scaling.json    the seed's feature scaling fitted on that split's training rows only
    manifest.json                 recipe (with its kind), features, shards and their sizes, split counts and hashes

Splits: ``day`` puts whole days in one set; ``block`` whole spatial blocks, with training (and
validation) centres kept ``buffer`` pixels away from test centres, so no two windows of different
sets share a pixel; ``day_x_block`` (the headline) keeps a sample only where its day and its block
fall in the same set: test is unseen days at unseen places.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.ml import splits
from ml4l.ml.stats import RunningStats, rescale
from ml4l.usecases.downscale.inputs import open_inputs, open_truth
from ml4l.usecases.downscale.layout import DownscaleLake
from ml4l.usecases.downscale.patches import BAND_INDEX, CENTRE_DIFF, FEATURES, HEIGHT_DIFFS, N_SCALAR, Heights, extract
from ml4l.usecases.downscale.recipe import DownscaleRecipe, FeatureScaling, SplitKind, SplitSpec

SPLIT_KINDS: tuple[SplitKind, ...] = ("day", "block", "day_x_block")
SETS = (splits.TRAIN, splits.VALIDATION, splits.TEST)


# ---- splits ----


def crossed(first: splits.Labels, second: splits.Labels) -> splits.Labels:
    """A sample stays only where both splits put it in the same set."""
    return np.where(first == second, first, splits.EXCLUDED).astype(np.int8)


def split_labels(kind: SplitKind, days: npt.ArrayLike, rows: npt.ArrayLike, cols: npt.ArrayLike, spec: SplitSpec) -> splits.Labels:
    """Labels of every sample for the split ``kind`` (seeded, byte-identical for the same inputs)."""
    if kind == "day":
        return splits.group_split(days, fractions=spec.fractions, seed=spec.seed)
    cells, inverse = np.unique(np.stack([np.asarray(rows), np.asarray(cols)], axis=1), axis=0, return_inverse=True)
    by_block = splits.spatial_block_split(
        cells[:, 0], cells[:, 1], block=spec.block, fractions=spec.fractions, buffer=spec.buffer, seed=spec.seed + 1
    )[inverse.reshape(-1)]
    if kind == "block":
        return by_block
    return crossed(splits.group_split(days, fractions=spec.fractions, seed=spec.seed), by_block)


def check_split(
    kind: SplitKind,
    days: npt.ArrayLike,
    rows: npt.ArrayLike,
    cols: npt.ArrayLike,
    labels: splits.Labels,
    spec: SplitSpec,
) -> None:
    """Raise :class:`ml4l.ml.splits.LeakageError` if the split shares a day (day kinds) or window pixels (block kinds)."""
    if kind in ("day", "day_x_block"):
        splits.check_group_leakage(days, labels)
    if kind in ("block", "day_x_block"):
        splits.check_spatial_leakage(rows, cols, labels, buffer=spec.buffer)


# ---- scaling ----


@dataclass
class Scaler:
    """``(x - offset) / scale`` per feature; the 81 height differences share one offset and scale."""

    offset: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    methods: dict[str, str]
    stats: dict[str, Any] = field(default_factory=dict)

    def apply(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return rescale(features, self.offset, self.scale)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": FEATURES,
            "offset": self.offset.tolist(),
            "scale": self.scale.tolist(),
            "methods": self.methods,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> Scaler:
        if saved["features"] != FEATURES:
            raise ValueError("the saved scaling is for other features")
        return cls(np.asarray(saved["offset"]), np.asarray(saved["scale"]), saved["methods"], saved.get("stats", {}))


def fit_scaler(batches: Iterator[npt.NDArray[np.float32]], scaling: FeatureScaling) -> Scaler:
    """Fit the seed's scaling on training rows (streamed batches of raw features, float64 accumulators)."""
    scalar, diffs = RunningStats(N_SCALAR), RunningStats(1)
    for batch in batches:
        scalar.update(batch[:, :N_SCALAR])
        diffs.update(batch[:, N_SCALAR:].reshape(-1, 1))
    if not scalar.count.any():
        raise ValueError("no training rows to fit the scaling on")
    names = FEATURES[:N_SCALAR] + ["height_diffs"]
    merged = {k: np.concatenate([getattr(scalar, k), getattr(diffs, k)]) for k in ("mean", "minimum", "maximum")}
    merged["std"] = np.concatenate([scalar.std, diffs.std])
    methods = {name: getattr(scaling, name) for name in names}
    offset, scale = np.zeros(len(names)), np.ones(len(names))
    for i, name in enumerate(names):
        if methods[name] == "normalize":
            offset[i], scale[i] = merged["minimum"][i], merged["maximum"][i] - merged["minimum"][i]
        elif methods[name] == "standardize":
            offset[i], scale[i] = merged["mean"][i], merged["std"][i]
    scale = np.where(scale > 0, scale, 1.0)
    repeat = np.r_[np.ones(N_SCALAR, dtype=int), len(HEIGHT_DIFFS)]
    stats = {**scalar.to_dict(FEATURES[:N_SCALAR]), **diffs.to_dict(["height_diffs"])}
    return Scaler(np.repeat(offset, repeat), np.repeat(scale, repeat), methods, stats)


# ---- build ----


def _save_npz(lake: Lake, path: str, **arrays: npt.NDArray[Any]) -> None:
    with lake.fs.open(path, "wb") as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]


def _load_npz(lake: Lake, path: str) -> dict[str, npt.NDArray[Any]]:
    with lake.fs.open(path, "rb") as source, np.load(source) as loaded:
        return {k: loaded[k] for k in loaded.files}


def build_dataset(lake: Lake, recipe: DownscaleRecipe) -> dict[str, Any]:
    """Patches of every day and band, the three splits and their scalers; returns the manifest."""
    paths = DownscaleLake(lake)
    year = recipe.sample.year
    inputs = open_inputs(lake.local(paths.lst(year)), lake.local(paths.dem()))
    truth = open_truth(lake.local(paths.truth(year))) if lake.fs.exists(paths.truth(year)) else None
    if truth is not None and (not np.array_equal(truth.time, inputs.days) or truth.shape[2:] != inputs.dem.shape):
        raise InputError(paths.truth(year), f"the noise-free truth's days or grid differ from {paths.lst(year)}'s")
    heights = Heights.of(inputs.dem)
    days_in_year = 366 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 365
    target = paths.dataset(recipe.name)
    shards, index = [], []
    with lake.replace_whole(target) as staging:
        lake.fs.makedirs(f"{staging}/shards", exist_ok=True)
        try:
            for i, day in enumerate(inputs.days):
                lst, qa = inputs.day(i)
                true = None if truth is None else np.asarray(truth[i], dtype=np.float64)
                parts = [
                    (
                        BAND_INDEX[b],
                        extract(
                            lst[BAND_INDEX[b]],
                            qa,
                            heights,
                            inputs.lat,
                            inputs.lon,
                            int(day),
                            days_in_year,
                            b,
                            None if true is None else true[BAND_INDEX[b]],
                        ),
                    )
                    for b in recipe.patches.bands
                ]
                shard = {
                    "features": np.concatenate([p.features for _, p in parts]),
                    "target": np.concatenate([p.target for _, p in parts]),
                    "oracle": np.concatenate([p.oracle for _, p in parts]),
                    "row": np.concatenate([p.rows for _, p in parts]),
                    "col": np.concatenate([p.cols for _, p in parts]),
                    "band": np.concatenate([np.full(p.target.size, b, dtype=np.int8) for b, p in parts]),
                }
                name = paths.shard_name(int(day))
                _save_npz(lake, f"{staging}/{name}", **shard)
                shards.append({"path": name, "day": int(day), "rows": int(shard["target"].size)})
                index.append((np.full(shard["target"].size, day, dtype=np.int16), shard["row"], shard["col"]))
        finally:
            inputs.close()
        days, rows, cols = (np.concatenate(parts) for parts in zip(*index, strict=True))
        manifest: dict[str, Any] = {
            "recipe": recipe.model_dump(mode="json"),
            "features": FEATURES,
            "shards": shards,
            "grid": {
                "rows": int(inputs.lat.size),
                "cols": int(inputs.lon.size),
                "lat": [float(inputs.lat[0]), float(inputs.lat[-1])],
                "lon": [float(inputs.lon[0]), float(inputs.lon[-1])],
            },
            "splits": {},
        }
        for kind in SPLIT_KINDS:
            labels = split_labels(kind, days, rows, cols, recipe.split)
            check_split(kind, days, rows, cols, labels, recipe.split)
            directory = paths.split_dir(staging, kind)
            lake.fs.makedirs(directory, exist_ok=True)
            with lake.fs.open(f"{directory}/labels.npy", "wb") as out:
                np.save(out, labels)
            scaler = fit_scaler(_train_batches(lake, staging, shards, labels), recipe.feature_scaling)
            with lake.fs.open(f"{directory}/scaling.json", "w") as out:
                json.dump(scaler.to_dict(), out, indent=1)
            manifest["splits"][kind] = {
                "hash": splits.split_hash(labels),
                **{splits.SPLIT_NAMES[s]: int((labels == s).sum()) for s in SETS},
                "excluded": int((labels == splits.EXCLUDED).sum()),
            }
        with lake.fs.open(paths.manifest(staging), "w") as out:
            json.dump(manifest, out, indent=1)
    return manifest


def _train_batches(lake: Lake, directory: str, shards: list[dict[str, Any]], labels: splits.Labels) -> Iterator[npt.NDArray[np.float32]]:
    start = 0
    for shard in shards:
        chosen = labels[start : start + shard["rows"]] == splits.TRAIN
        start += shard["rows"]
        if chosen.any():
            yield _load_npz(lake, f"{directory}/{shard['path']}")["features"][chosen]


# ---- read back ----


@dataclass
class SplitSet:
    """One set of a split: scaled features, target and oracle (K), and where each sample is."""

    features: npt.NDArray[np.float32]
    target: npt.NDArray[np.float32]
    oracle: npt.NDArray[np.float32]
    raw_centre_diff: npt.NDArray[np.float32]
    """The centre's height difference (m), unscaled: the lapse-rate baseline's input."""
    day: npt.NDArray[np.int16]
    row: npt.NDArray[np.int16]
    col: npt.NDArray[np.int16]
    band: npt.NDArray[np.int8]


def read_manifest(lake: Lake, name: str) -> dict[str, Any]:
    paths = DownscaleLake(lake)
    with lake.fs.open(paths.manifest(paths.dataset(name))) as source:
        manifest: dict[str, Any] = json.load(source)
    return manifest


def load_split(lake: Lake, name: str, kind: SplitKind) -> tuple[dict[int, SplitSet], Scaler, splits.Labels]:
    """The train, validation and test sets of split ``kind``, scaled with its train-only scaler."""
    paths = DownscaleLake(lake)
    directory = paths.dataset(name)
    manifest = read_manifest(lake, name)
    with lake.fs.open(f"{paths.split_dir(directory, kind)}/labels.npy", "rb") as source:
        labels = np.load(source)
    with lake.fs.open(f"{paths.split_dir(directory, kind)}/scaling.json") as source:
        scaler = Scaler.from_dict(json.load(source))
    parts: dict[int, list[dict[str, npt.NDArray[Any]]]] = {s: [] for s in SETS}
    start = 0
    for shard in manifest["shards"]:
        chunk = labels[start : start + shard["rows"]]
        start += shard["rows"]
        if not np.isin(chunk, SETS).any():
            continue
        loaded = _load_npz(lake, f"{directory}/{shard['path']}")
        loaded["day"] = np.full(shard["rows"], shard["day"], dtype=np.int16)
        for s in SETS:
            chosen = chunk == s
            if chosen.any():
                parts[s].append({k: v[chosen] for k, v in loaded.items()})
    out = {}
    for s in SETS:
        if not parts[s]:
            raise ValueError(f"split {kind} of data set {name} has no {splits.SPLIT_NAMES[s]} rows")
        joined = {k: np.concatenate([p[k] for p in parts[s]]) for k in parts[s][0]}
        out[s] = SplitSet(
            scaler.apply(joined["features"]),
            joined["target"],
            joined["oracle"],
            joined["features"][:, CENTRE_DIFF],
            joined["day"],
            joined["row"],
            joined["col"],
            joined["band"],
        )
    return out, scaler, labels
