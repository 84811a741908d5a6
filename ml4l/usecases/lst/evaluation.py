"""Evaluation on a test split: error metrics overall and by surface category, permutation importance, plots.

Errors are prediction minus MODIS, in K. The plots are matplotlib ``Figure`` objects,
made without pyplot so none stays open, that the training run logs to MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ml4l.ml.metrics import named_metrics as contract_metrics

CATEGORY_COLUMNS = ("cvh_v20", "cvl_v20", "si10_v20", "clake")
"""Raw V20 fields that decide a row's surface category."""


def error_metrics(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and bias (predicted minus observed), K."""
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(observed, dtype=np.float64)
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())), "bias": float(error.mean())}


def category_of(raw: pd.DataFrame) -> np.ndarray:
    """Surface category of each row from raw (denormalised) V20 fields: lake, glacier, bare ground or vegetation."""
    category = np.full(len(raw), "vegetation", dtype=object)
    bare = (raw["cvh_v20"] + raw["cvl_v20"]).to_numpy() < 0.2
    category[bare] = "bare ground"
    category[raw["si10_v20"].to_numpy() > 0.5] = "glacier"
    category[raw["clake"].to_numpy() > 0.5] = "lake"
    return category


def named_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """The run's named test metrics from an evaluation frame, under the names of :mod:`ml4l.ml.metrics`.

    ``frame`` has ``observed``, ``predicted``, ``skt`` and ``linear`` (K), and optionally
    ``oracle`` (the noise-free truth of a synthetic lake, :mod:`ml4l.usecases.lst.oracle`) and ``category``.
    Gives ``test_{mae,mse,rmse,bias}``, the same for ``baseline_skt_test_*`` and
    ``baseline_linear_test_*``, with an oracle ``oracle_test_*`` and ``gap_closed`` on the MAE,
    and per category ``test_<category>_{mae,rmse,bias,rows}``.
    """
    oracle = frame["oracle"].to_numpy() if "oracle" in frame else None
    metrics = contract_metrics(
        frame["observed"].to_numpy(),
        frame["predicted"].to_numpy(),
        {"skt": frame["skt"].to_numpy(), "linear": frame["linear"].to_numpy()},
        oracle,
        gap_metric="mae",
    )
    if "category" in frame:
        for label, rows in frame.groupby("category"):
            slug = str(label).replace(" ", "_")
            for key, value in error_metrics(rows["observed"].to_numpy(), rows["predicted"].to_numpy()).items():
                metrics[f"test_{slug}_{key}"] = value
            metrics[f"test_{slug}_rows"] = float(len(rows))
    return metrics


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, features: list[str], seed: int = 0
) -> pd.DataFrame:
    """Increase of MAE (K) when each feature's column is shuffled, largest first."""
    rng = np.random.default_rng(seed)
    base = float(np.abs(predict(x) - y).mean())
    rows = []
    for index, name in enumerate(features):
        shuffled = x.copy()
        shuffled[:, index] = rng.permutation(shuffled[:, index])
        rows.append({"feature": name, "mae_increase": float(np.abs(predict(shuffled) - y).mean()) - base})
    return pd.DataFrame(rows).sort_values("mae_increase", ascending=False, ignore_index=True)


def _figure(width: float = 6.0, height: float = 4.0) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")  # not pyplot: nothing is kept open afterwards
    return figure, figure.subplots()


LOSS_LABELS = {"mse": "MSE (K²)", "huber": "Huber loss (K², 1 K)", "mae": "MAE (K)"}
"""Axis label of each training loss (:data:`ml4l.config.TRAIN_LOSSES`)."""


def learning_curve_figure(history: dict[str, list[float]], loss: str = "mse") -> Any:
    """Training and validation ``loss`` per epoch."""
    figure, axes = _figure()
    for key in ("loss", "val_loss"):
        if key in history:
            axes.plot(np.arange(1, len(history[key]) + 1), history[key], label=key)
    axes.set(xlabel="epoch", ylabel=LOSS_LABELS[loss], yscale="log", title="Learning curve")
    axes.legend()
    return figure


def error_map_figure(frame: pd.DataFrame) -> Any:
    """Mean error (predicted minus MODIS) per ERA cell on a longitude-latitude map."""
    per_cell = frame.assign(error=frame["predicted"] - frame["observed"]).groupby("cell")[["longitude", "latitude", "error"]].mean()
    figure, axes = _figure(8.0, 4.0)
    longitude = (per_cell["longitude"].to_numpy() + 180.0) % 360.0 - 180.0
    limit = float(np.nanpercentile(np.abs(per_cell["error"]), 98)) or 1.0
    points = axes.scatter(longitude, per_cell["latitude"], c=per_cell["error"], s=4, cmap="RdBu_r", vmin=-limit, vmax=limit)
    figure.colorbar(points, ax=axes, label="mean error (K)")
    axes.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude", ylabel="latitude", title="Test error by cell")
    return figure


def predicted_vs_observed_figure(frame: pd.DataFrame) -> Any:
    """Density of predicted against observed LST, with the 1:1 line."""
    figure, axes = _figure(5.0, 5.0)
    observed, predicted = frame["observed"].to_numpy(), frame["predicted"].to_numpy()
    axes.hexbin(observed, predicted, gridsize=80, bins="log", mincnt=1)
    low, high = float(min(observed.min(), predicted.min())), float(max(observed.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="black", linewidth=0.8)
    axes.set(xlabel="MODIS LST (K)", ylabel="predicted LST (K)", title="Predicted against observed")
    return figure


def importance_figure(importance: pd.DataFrame, top: int = 20) -> Any:
    """The ``top`` features by permutation importance."""
    shown = importance.head(top).iloc[::-1]
    figure, axes = _figure(6.0, 0.25 * len(shown) + 1.0)
    axes.barh(shown["feature"], shown["mae_increase"])
    axes.set(xlabel="MAE increase when shuffled (K)", title="Permutation importance")
    return figure
