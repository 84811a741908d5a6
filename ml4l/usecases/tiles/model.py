"""A small model on the HDF5, to show it is ML-ready: a tile's mean MODIS LST from its other modalities.

Features per tile: the mean of each band of each stack modality over the tile's valid pixels and the
ERA t2m statistics, standardised with the file's band statistics (training tiles only); a missing
modality becomes the training mean (0 after standardising). Target: the tile's mean ``modis_lst``;
tiles no MODIS look saw have no target and are left out of every set.

Ridge regression (scikit-learn), its ``alpha`` picked on the validation tiles; the test tiles are read
once, at the end. A linear model fits the size of the problem (about a hundred training tiles and
fifteen features) and keeps the demo within its time budget, where a Keras network would not: importing
TensorFlow alone takes a large share of it on two cores.

Baseline ``mean``: the training tiles' mean target. Oracle: the noise-free truth of the sample
(``truth/noise_free.parquet``) on the same test tiles.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml4l.lake import Lake
from ml4l.ml.metrics import named_metrics, regression_metrics
from ml4l.usecases.tiles.build import ERA, MODIS
from ml4l.usecases.tiles.layout import TilesLake
from ml4l.usecases.tiles.recipe import TilesRecipe

EXPERIMENT = "ml4l-tiles"


@dataclass
class ModelReport:
    metrics: dict[str, float]
    alpha: float
    rows: dict[str, int]
    features: list[str] = field(default_factory=list)
    run_id: str | None = None


def tile_table(
    hdf5: str, band_stats: dict[str, Any], recipe: TilesRecipe
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[str], list[str]]:
    """Standardised features, target, feature names and tile ids of every tile in the HDF5."""
    import h5py

    columns, names = [], []
    stats = band_stats["modalities"]
    with h5py.File(hdf5, "r") as source, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a missing modality or an unseen tile: NaN, handled below
        for name in [m.name for m in recipe.modalities] + [ERA]:
            values = source[name][...].astype(np.float64)
            means = values if values.ndim == 2 else np.nanmean(values, axis=(2, 3))
            bands = [str(b) for b in source[name].attrs["bands"]]
            centre = np.asarray([stats[name][b]["mean"] for b in bands])
            scale = np.asarray([stats[name][b]["std"] for b in bands])
            columns.append((means - centre) / np.where(scale > 0, scale, 1.0))
            names += [f"{name}:{b}" for b in bands]
        target = np.nanmean(source[MODIS][...].astype(np.float64), axis=(1, 2, 3))
        ids = [row.decode() for row in source["metadata"]["tile_id"]]
    features = np.nan_to_num(np.concatenate(columns, axis=1), nan=0.0)
    return features, target, names, ids


def train_and_evaluate(lake: Lake, recipe: TilesRecipe, tracking_uri: str | None = None) -> ModelReport:
    """Fit on the training tiles, pick ``alpha`` on validation, score the test tiles; log to MLflow ``ml4l-tiles``."""
    from sklearn.linear_model import Ridge

    from ml4l.ml.tracking import log_recipe, run

    paths = TilesLake(lake, recipe.name)
    band_stats = json.loads(Path(paths.band_stats).read_text())
    splits = json.loads(Path(paths.splits).read_text())
    x, y, names, ids = tile_table(paths.hdf5, band_stats, recipe)
    seen = np.isfinite(y)
    sets = {key: np.asarray([i for i in splits[key] if seen[i]], dtype=np.int64) for key in ("train", "val", "test")}
    scores = {}
    for alpha in recipe.model.alphas:
        fitted = Ridge(alpha=alpha).fit(x[sets["train"]], y[sets["train"]])
        scores[alpha] = regression_metrics(y[sets["val"]], fitted.predict(x[sets["val"]]))["rmse"]
    alpha = min(scores, key=lambda a: scores[a])
    model = Ridge(alpha=alpha).fit(x[sets["train"]], y[sets["train"]])
    test = sets["test"]
    truth = pd.read_parquet(paths.raw.truth).set_index("tile_id")["lst_noise_free"]
    oracle = truth.reindex([ids[i] for i in test]).to_numpy()
    baseline = np.full(test.size, y[sets["train"]].mean())
    metrics = named_metrics(y[test], model.predict(x[test]), {"mean": baseline}, oracle=oracle)
    rows = {key: int(index.size) for key, index in sets.items()} | {"no_target": int((~seen).sum())}
    report = ModelReport(metrics, float(alpha), rows, names)
    with run(lake, EXPERIMENT, uri=tracking_uri, run_name=f"tiles-{recipe.name}") as active:
        import mlflow

        log_recipe(recipe)
        mlflow.log_params({"model": "ridge", "alpha": alpha, "features": len(names), **{f"rows_{k}": v for k, v in rows.items()}})
        mlflow.set_tags({"split_hash": splits["split_hash"], "hdf5": paths.hdf5})
        mlflow.log_metrics(metrics | {f"validation_rmse_alpha_{a:g}": s for a, s in scores.items()})
        report.run_id = active.info.run_id
    return report
