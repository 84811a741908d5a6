"""Streamed per-column statistics: Chan et al.'s parallel merge of (count, mean, M2) in float64.

Fitted on training rows only by the callers; NaN values are skipped (no-data aware).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass
class RunningStats:
    """Count, mean, sum of squared deviations, min and max per column, merged batch by batch."""

    columns: int
    count: npt.NDArray[np.float64] = field(init=False)
    mean: npt.NDArray[np.float64] = field(init=False)
    m2: npt.NDArray[np.float64] = field(init=False)
    minimum: npt.NDArray[np.float64] = field(init=False)
    maximum: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        self.count = np.zeros(self.columns)
        self.mean = np.zeros(self.columns)
        self.m2 = np.zeros(self.columns)
        self.minimum = np.full(self.columns, np.inf)
        self.maximum = np.full(self.columns, -np.inf)

    def update(self, batch: npt.ArrayLike) -> RunningStats:
        """Merge a batch of rows ``(n, columns)`` (or one column ``(n,)`` when ``columns == 1``)."""
        x = np.asarray(batch, dtype=np.float64).reshape(-1, self.columns)
        valid = ~np.isnan(x)
        n = valid.sum(axis=0).astype(np.float64)
        if not n.any():
            return self
        total = np.where(valid, x, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, total / n, 0.0)
        m2 = np.where(valid, (x - mean) ** 2, 0.0).sum(axis=0)
        self._merge(n, mean, m2, np.where(valid, x, np.inf).min(axis=0), np.where(valid, x, -np.inf).max(axis=0))
        return self

    def merge(self, other: RunningStats) -> RunningStats:
        """Merge another accumulator of the same columns."""
        if other.columns != self.columns:
            raise ValueError(f"cannot merge statistics of {other.columns} columns into {self.columns}")
        self._merge(other.count, other.mean, other.m2, other.minimum, other.maximum)
        return self

    def _merge(
        self,
        n: npt.NDArray[np.float64],
        mean: npt.NDArray[np.float64],
        m2: npt.NDArray[np.float64],
        minimum: npt.NDArray[np.float64],
        maximum: npt.NDArray[np.float64],
    ) -> None:
        total = self.count + n
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mean - self.mean
            share = np.where(total > 0, n / total, 0.0)
            self.mean = self.mean + delta * share
            self.m2 = self.m2 + m2 + delta**2 * self.count * share
        self.count = total
        self.minimum = np.minimum(self.minimum, minimum)
        self.maximum = np.maximum(self.maximum, maximum)

    @property
    def variance(self) -> npt.NDArray[np.float64]:
        """Population variance (ddof 0); NaN for an empty column."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.m2 / self.count, np.nan)

    @property
    def std(self) -> npt.NDArray[np.float64]:
        return np.sqrt(self.variance)

    def to_dict(self, names: list[str] | None = None) -> dict[str, Any]:
        """JSON-ready statistics, by column name when ``names`` are given."""
        keys = names or [str(i) for i in range(self.columns)]
        if len(keys) != self.columns:
            raise ValueError(f"{len(keys)} names for {self.columns} columns")
        fields = {"count": self.count, "mean": self.mean, "std": self.std, "min": self.minimum, "max": self.maximum, "m2": self.m2}
        return {k: {f: float(v[i]) for f, v in fields.items()} for i, k in enumerate(keys)}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> RunningStats:
        """The accumulator back from :meth:`to_dict` (column order as saved)."""
        stats = cls(len(saved))
        for i, entry in enumerate(saved.values()):
            stats.count[i], stats.mean[i], stats.m2[i] = entry["count"], entry["mean"], entry["m2"]
            stats.minimum[i], stats.maximum[i] = entry["min"], entry["max"]
        return stats


def rescale(x: npt.ArrayLike, offset: npt.ArrayLike, scale: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``(x - offset) / scale`` per column, in float64, returned as float32; a zero scale divides by 1 (shift only)."""
    divisor = np.asarray(scale, dtype=np.float64)
    shifted = np.asarray(x, dtype=np.float64) - np.asarray(offset, dtype=np.float64)
    return (shifted / np.where(divisor > 0, divisor, 1.0)).astype(np.float32)


def standardise(x: npt.ArrayLike, stats: RunningStats) -> npt.NDArray[np.float32]:
    """``(x - mean) / std`` with the fitted statistics; a zero-variance column is centred only."""
    return rescale(x, stats.mean, stats.std)
