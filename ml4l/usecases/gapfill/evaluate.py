"""Scores of a gap filler against its baselines and the oracle, two ways, and a map of one step.

* Held-out blocks: the test rows of the space x time split (``test_*``, ``baseline_<name>_test_*``,
  ``oracle_test_*``, ``gap_closed``; :func:`ml4l.ml.metrics.named_metrics`).
* Artificial gaps: observed test cells hidden under the cloud mask of another date, filled from what
  stays observed around them, as gap filling is judged in the literature (the same names, prefixed
  ``artificial_gap_``).

The oracle is the generated cube's noise-free LST on the same rows; a cube without one (built from the
lake) has no oracle metrics and no ``gap_closed``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from ml4l.ml.metrics import named_metrics
from ml4l.usecases.gapfill.cube import Cube
from ml4l.usecases.gapfill.dataset import Samples
from ml4l.usecases.gapfill.model import GapFiller

MODEL = "mlp"
BASELINES = ("linear_t2m", "per_pixel_linear")


def scores(rows: Samples, models: Mapping[str, GapFiller], truth: npt.NDArray[np.float32] | None) -> dict[str, float]:
    """Contract metrics of ``models[MODEL]`` and the :data:`BASELINES` on ``rows``."""
    predicted = {name: model.predict(rows.x, rows.row, rows.col) for name, model in models.items()}
    oracle = None if truth is None else truth[rows.step, rows.row, rows.col]
    out = named_metrics(rows.y, predicted[MODEL], {name: predicted[name] for name in BASELINES}, oracle=oracle)
    out["test_rows"] = float(rows.y.size)
    return out


def evaluate(
    test: Samples, artificial: Samples, models: Mapping[str, GapFiller], truth: npt.NDArray[np.float32] | None
) -> dict[str, float]:
    """Held-out-block metrics and the same on artificial gaps, prefixed ``artificial_gap_``."""
    metrics = scores(test, models, truth)
    metrics.update({f"artificial_gap_{k}": v for k, v in scores(artificial, models, truth).items()})
    return metrics


def map_step(cube: Cube) -> int:
    """The step shown on the map: the one whose share of land missing is closest to the cube's median."""
    missing = (~cube.observed & cube.land[None]).sum(axis=(1, 2)) / max(int(cube.land.sum()), 1)
    return int(np.argmin(np.abs(missing - np.median(missing))))


def map_figure(cube: Cube, step: int, filled: npt.NDArray[np.float32], truth: npt.NDArray[np.float32] | None) -> Figure:
    """Observed, filled and (when known) true LST of one step on one colour scale; a Figure, not pyplot state."""
    observed = np.where(cube.observed[step], cube.lst[step], np.nan)
    panels = [("observed", observed), ("filled", filled)] + ([("truth (no noise)", truth)] if truth is not None else [])
    finite = np.concatenate([p[np.isfinite(p)] for _, p in panels])
    vmin, vmax = np.percentile(finite, [1, 99])
    figure = Figure(figsize=(4.2 * len(panels), 4.0), dpi=80, layout="constrained")
    axes = figure.subplots(1, len(panels), sharey=True)
    extent = (cube.lon[0], cube.lon[-1], cube.lat[-1], cube.lat[0])
    sea = np.where(cube.land, np.nan, 1.0)
    for ax, (title, values) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(sea, extent=extent, cmap=ListedColormap(["0.75"]), interpolation="nearest")
        image = ax.imshow(values, extent=extent, vmin=vmin, vmax=vmax, cmap="inferno", interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel("longitude")
    np.atleast_1d(axes)[0].set_ylabel("latitude")
    figure.colorbar(image, ax=axes, label="LST (K)", shrink=0.8)
    figure.suptitle(f"{cube.time[step]:%Y-%m-%d} (grey: sea, white: cloud)")
    return figure
