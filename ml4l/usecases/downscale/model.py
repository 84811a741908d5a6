"""The seed's MLP on one split, its baselines and oracle, scored once on test and logged to MLflow.

Baselines (predicting the target, centre minus patch mean, K):

* ``zero``: the patch mean is the centre (the seed's baseline);
* ``lapse_rate``: the patch mean corrected by a lapse rate times the centre's height difference,
  one rate per band (night and day differ in sign and size), fitted on the training rows by least
  squares through the origin.

The oracle is the noise-free truth's target on the same test rows. The model is trained through
:func:`ml4l.ml.trainer.fit`: validation alone picks the epoch; the test set is read once, after.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml4l.lake import Lake
from ml4l.ml import splits, trainer
from ml4l.ml.metrics import named_metrics
from ml4l.usecases.downscale.dataset import SplitSet, load_split, read_manifest
from ml4l.usecases.downscale.patches import BAND_INDEX, FEATURES
from ml4l.usecases.downscale.recipe import DownscaleRecipe, ModelSpec, SplitKind

EXPERIMENT = "ml4l-downscale"
BAND_NAMES = {index: name for name, index in BAND_INDEX.items()}


def fit_lapse_rates(train: SplitSet) -> dict[int, float]:
    """K per km of centre height difference, per band, least squares through the origin on training rows."""
    rates = {}
    for band in np.unique(train.band):
        chosen = train.band == band
        dh_km = train.raw_centre_diff[chosen].astype(np.float64) / 1000
        rates[int(band)] = float(np.dot(dh_km, train.target[chosen]) / np.dot(dh_km, dh_km))
    return rates


def lapse_rate_predict(rates: dict[int, float], rows: SplitSet) -> npt.NDArray[np.float64]:
    per_row = np.array([rates.get(int(b), 0.0) for b in range(len(BAND_INDEX))])[rows.band]
    return per_row * rows.raw_centre_diff.astype(np.float64) / 1000


def build_mlp(spec: ModelSpec) -> Any:
    """The seed's fully connected net: Dense, batch norm before ReLU, optional dropout."""
    return trainer.mlp(len(FEATURES), spec.hidden, batch_norm=True, dropout=spec.dropout)


def fit_config(spec: ModelSpec) -> trainer.FitConfig:
    return trainer.FitConfig(
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        patience=spec.patience,
        seed=spec.seed,
        halve_every=spec.halve_every,
    )


def improvement_percent(model_mse: float, zero_mse: float) -> float:
    """The seed's "MSE Improvement Percent": how much lower the model's MSE is than the zero baseline's, %."""
    return 100.0 * (zero_mse - model_mse) / zero_mse


@dataclass
class TrainOutcome:
    metrics: dict[str, float]
    run_id: str
    lapse_rates: dict[str, float]
    best_epoch: int
    split_hash: str


def test_day_map(test: SplitSet, predicted: npt.NDArray[np.float64], shape: tuple[int, int], lat: list[float], lon: list[float]) -> Any:
    """Observed, predicted and error (K) of the test day and band with the most samples, as a matplotlib Figure."""
    from matplotlib.figure import Figure

    keys = test.day.astype(np.int64) * 10 + test.band
    values, counts = np.unique(keys, return_counts=True)
    best = values[np.argmax(counts)]
    chosen = keys == best
    grids = {}
    for label, data in (
        ("observed", test.target),
        ("predicted", predicted),
        ("error (predicted - observed)", predicted - test.target),
    ):
        grid = np.full(shape, np.nan)
        grid[test.row[chosen], test.col[chosen]] = np.asarray(data)[chosen]
        grids[label] = grid
    figure = Figure(figsize=(13, 4.5), layout="constrained")
    axes = figure.subplots(1, 3, sharex=True, sharey=True)
    limit = float(np.nanpercentile(np.abs(grids["observed"]), 99))
    half_lat, half_lon = (lat[1] - lat[0]) / (shape[0] - 1) / 2, (lon[1] - lon[0]) / (shape[1] - 1) / 2
    extent = (lon[0] - half_lon, lon[1] + half_lon, lat[0] - half_lat, lat[1] + half_lat)  # pixel edges
    for ax, (label, grid) in zip(axes, grids.items(), strict=True):
        image = ax.imshow(grid, origin="lower", extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(label)
        ax.set_xlabel("longitude")
    axes[0].set_ylabel("latitude")
    figure.colorbar(image, ax=axes, label="centre - 9x9 mean LST (K)", shrink=0.8)
    figure.suptitle(f"test day {int(best) // 10}, {BAND_NAMES[int(best) % 10]} band: {int(chosen.sum())} pixels")
    return figure


def train(lake: Lake, recipe: DownscaleRecipe, kind: SplitKind | None = None, tracking_uri: str | None = None) -> TrainOutcome:
    """Train on data set ``recipe.name`` with split ``kind`` (default: the recipe's), score on test, log to MLflow."""
    import mlflow

    from ml4l.ml.tracking import log_recipe, run

    kind = kind or recipe.split.kind
    sets, scaler, labels = load_split(lake, recipe.name, kind)
    train_set, validation, test = sets[splits.TRAIN], sets[splits.VALIDATION], sets[splits.TEST]
    spec = recipe.model
    config = fit_config(spec)
    result = trainer.fit(
        lambda: build_mlp(spec),
        (train_set.features, train_set.target[:, None]),
        (validation.features, validation.target[:, None]),
        config,
    )
    predicted = result.model.predict(test.features, batch_size=8192, verbose=0).ravel().astype(np.float64)
    rates = fit_lapse_rates(train_set)
    baselines = {"zero": np.zeros(test.target.size), "lapse_rate": lapse_rate_predict(rates, test)}
    oracle = test.oracle if np.isfinite(test.oracle).all() else None  # real inputs have no noise-free truth
    metrics = named_metrics(test.target, predicted, baselines, oracle=oracle, gap_metric="mse")
    metrics["mse_improvement_percent"] = improvement_percent(metrics["test_mse"], metrics["baseline_zero_test_mse"])
    metrics["epochs_trained"] = float(len(result.history.get("loss", [])))
    metrics["best_epoch"] = float(result.best_epoch)
    manifest = read_manifest(lake, recipe.name)
    grid = manifest["grid"]
    split_hash = splits.split_hash(labels)
    named_rates = {BAND_NAMES[b]: r for b, r in rates.items()}
    with run(lake, EXPERIMENT, uri=tracking_uri, run_name=f"{recipe.name}-{kind}") as active:
        log_recipe(recipe)
        mlflow.log_params(
            {
                "split": kind,
                "split_hash": split_hash,
                "dataset": recipe.name,
                **{f"rows_{splits.SPLIT_NAMES[s]}": int(v.target.size) for s, v in sets.items()},
                **{f"fit.{k}": v for k, v in vars(config).items()},
                **{f"lapse_rate_{b}_k_per_km": round(r, 4) for b, r in named_rates.items()},
            }
        )
        for epoch, (loss, val_loss) in enumerate(zip(result.history["loss"], result.history["val_loss"], strict=True)):
            mlflow.log_metrics({"loss": loss, "val_loss": val_loss}, step=epoch)
        mlflow.log_metrics(metrics)
        mlflow.log_dict(scaler.to_dict(), "dataset/scaling.json")
        mlflow.log_figure(
            test_day_map(test, predicted, (grid["rows"], grid["cols"]), grid["lat"], grid["lon"]),
            "plots/test_day_map.png",
        )
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "model.keras"
            result.model.save(path)
            mlflow.log_artifact(str(path), "model")
        run_id = active.info.run_id
    return TrainOutcome(metrics, run_id, named_rates, result.best_epoch, split_hash)
