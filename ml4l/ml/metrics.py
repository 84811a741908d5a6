"""The metrics every use case logs, under the same names.

``test_<metric>`` for the model, ``baseline_<name>_test_<metric>`` for each baseline,
``oracle_test_<metric>`` for the noise-free synthetic truth on the same test rows, and
``gap_closed = (best baseline - model) / (best baseline - oracle)`` on one chosen metric.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt


def regression_metrics(observed: npt.ArrayLike, predicted: npt.ArrayLike) -> dict[str, float]:
    """MAE, MSE, RMSE and bias (predicted - observed) over the rows where both are finite."""
    y = np.asarray(observed, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} observed values against {p.size} predictions")
    ok = np.isfinite(y) & np.isfinite(p)
    if not ok.any():
        raise ValueError("no rows with both an observed and a predicted value")
    error = p[ok] - y[ok]
    mse = float(np.mean(error**2))
    return {"mae": float(np.mean(np.abs(error))), "mse": mse, "rmse": float(np.sqrt(mse)), "bias": float(np.mean(error))}


def gap_closed(model: float, baselines: Mapping[str, float], oracle: float) -> float:
    """Share of the gap between the best baseline and the oracle that the model closes (lower is better).

    NaN when the best baseline is already at or below the oracle: there is no gap to close.
    """
    best = min(baselines.values())
    if best <= oracle:
        return float("nan")
    return (best - model) / (best - oracle)


def named_metrics(
    observed: npt.ArrayLike,
    model: npt.ArrayLike,
    baselines: Mapping[str, npt.ArrayLike],
    oracle: npt.ArrayLike | None = None,
    gap_metric: str = "rmse",
) -> dict[str, float]:
    """Every test metric under its contract name, from predictions on the same test rows."""
    scores = regression_metrics(observed, model)
    out = {f"test_{k}": v for k, v in scores.items()}
    baseline_scores = {name: regression_metrics(observed, values) for name, values in baselines.items()}
    for name, values in baseline_scores.items():
        out.update({f"baseline_{name}_test_{k}": v for k, v in values.items()})
    if oracle is not None:
        oracle_scores = regression_metrics(observed, oracle)
        out.update({f"oracle_test_{k}": v for k, v in oracle_scores.items()})
        if baseline_scores:
            out["gap_closed"] = gap_closed(
                scores[gap_metric], {n: s[gap_metric] for n, s in baseline_scores.items()}, oracle_scores[gap_metric]
            )
    return out
