"""Seeded, leakage-checked splits shared by every use case.

A split is an ``int8`` label per sample: ``TRAIN`` (0), ``VALIDATION`` (1), ``TEST`` (2), or
``EXCLUDED`` (-1) for samples dropped to keep the sets apart (a buffer around test blocks, a gap
between time ranges). The same inputs and seed always give the same labels, byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

TRAIN, VALIDATION, TEST, EXCLUDED = 0, 1, 2, -1
SPLIT_NAMES = {TRAIN: "train", VALIDATION: "validation", TEST: "test"}

Labels = npt.NDArray[np.int8]


class LeakageError(ValueError):
    """Two sets of a split share a sample, a group, a time or a buffer zone."""


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative shares of train, validation and test summing to 1, got {tuple(fractions)}")
    return float(fractions[0]), float(fractions[1]), float(fractions[2])


def _assign_units(count: int, fractions: Sequence[float], seed: int) -> Labels:
    """Split ``count`` units (blocks, groups) by a seeded permutation; each non-empty share gets >= 1 unit."""
    train, validation, _ = _check_fractions(fractions)
    order = np.random.default_rng(seed).permutation(count)
    n_train = int(round(train * count))
    n_validation = int(round(validation * count))
    if validation > 0 and n_validation == 0 and count - n_train > 1:
        n_validation = 1
    if n_train + n_validation >= count and count >= 3:
        n_train = count - n_validation - 1
    labels = np.full(count, TEST, dtype=np.int8)
    labels[order[:n_train]] = TRAIN
    labels[order[n_train : n_train + n_validation]] = VALIDATION
    return labels


def time_split(
    times: npt.ArrayLike,
    train: tuple[str, str],
    validation: tuple[str, str],
    test: tuple[str, str],
    gap: np.timedelta64 | str = np.timedelta64(0, "D"),
) -> Labels:
    """Label samples by inclusive time ranges ``(start, end)``; samples within ``gap`` of another set's range are excluded.

    Ranges must not overlap. A sample outside every range is excluded.
    """
    t = np.asarray(times).astype("datetime64[ns]")
    gap_ns = (
        np.timedelta64(gap).astype("timedelta64[ns]")
        if not isinstance(gap, str)
        else np.timedelta64(int(gap.rstrip("D")), "D").astype("timedelta64[ns]")
    )
    ranges = {label: (np.datetime64(a, "ns"), _range_end(b)) for label, (a, b) in ((TRAIN, train), (VALIDATION, validation), (TEST, test))}
    ordered = sorted(ranges.items(), key=lambda item: item[1][0])
    for (_, (_, end)), (label, (start, _)) in zip(ordered, ordered[1:], strict=False):
        if start <= end:
            raise LeakageError(f"time ranges overlap: {SPLIT_NAMES[label]} starts at {start} before the previous range ends at {end}")
    labels = np.full(t.shape, EXCLUDED, dtype=np.int8)
    for label, (start, end) in ranges.items():
        labels[(t >= start) & (t <= end)] = label
    for label, (start, end) in ranges.items():
        near = (t >= start - gap_ns) & (t <= end + gap_ns) & (labels != label) & (labels != EXCLUDED)
        labels[near] = EXCLUDED
    return labels


def _range_end(end: str) -> np.datetime64:
    """The last nanosecond of an inclusive end given as a day, a month (``YYYY-MM``) or a year."""
    text = str(end)
    unit: Literal["Y", "M", "D"] = "Y" if len(text) == 4 else "M" if len(text) == 7 else "D"
    if len(text) > 10:
        return np.datetime64(text, "ns")
    return (np.datetime64(text, unit) + np.timedelta64(1, unit)).astype("datetime64[ns]") - np.timedelta64(1, "ns")


def block_index(rows: npt.ArrayLike, cols: npt.ArrayLike, block: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The (block row, block column) of each cell for square blocks of ``block`` cells."""
    if block < 1:
        raise ValueError(f"block must be >= 1 cell, got {block}")
    return np.asarray(rows, dtype=np.int64) // block, np.asarray(cols, dtype=np.int64) // block


def spatial_block_split(
    rows: npt.ArrayLike, cols: npt.ArrayLike, *, block: int, fractions: Sequence[float] = (0.7, 0.15, 0.15), buffer: int = 0, seed: int = 0
) -> Labels:
    """Assign whole ``block`` × ``block`` cell blocks to the sets; cells of other sets within ``buffer`` cells
    (Chebyshev distance) of a test cell are excluded, and likewise around validation blocks for train.
    """
    r, c = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    br, bc = block_index(r, c, block)
    keys, inverse = np.unique(np.stack([br, bc], axis=1), axis=0, return_inverse=True)
    labels = _assign_units(len(keys), fractions, seed)[inverse.reshape(-1)]
    if buffer > 0:
        labels = _apply_buffer(r, c, labels, buffer)
    return labels


def _apply_buffer(rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64], labels: Labels, buffer: int) -> Labels:
    """Exclude cells of a lower-priority set within ``buffer`` cells of a higher-priority one (test > validation > train)."""
    out = labels.copy()
    r0, c0 = rows.min(), cols.min()
    shape = (int(rows.max() - r0) + 1 + 2 * buffer, int(cols.max() - c0) + 1 + 2 * buffer)
    for protected in (TEST, VALIDATION):
        grid = np.zeros(shape, dtype=bool)
        sel = labels == protected
        grid[rows[sel] - r0 + buffer, cols[sel] - c0 + buffer] = True
        dilated = _dilate(grid, buffer)
        near = dilated[rows - r0 + buffer, cols - c0 + buffer]
        lower = (out != EXCLUDED) & (out < protected) if protected == TEST else out == TRAIN
        out[near & lower] = EXCLUDED
    return out


def _dilate(mask: npt.NDArray[np.bool_], radius: int) -> npt.NDArray[np.bool_]:
    """Square (Chebyshev) dilation by ``radius`` cells, separable: a running maximum along each axis."""
    out = mask
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=axis)
        out = np.asarray(windows.any(axis=-1))
    return out


def group_split(groups: npt.ArrayLike, *, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0) -> Labels:
    """Whole groups (a tile, a station, a region) go to one set."""
    keys, inverse = np.unique(np.asarray(groups), return_inverse=True)
    return _assign_units(len(keys), fractions, seed)[inverse.reshape(-1)]


def space_time_split(
    rows: npt.ArrayLike,
    cols: npt.ArrayLike,
    steps: npt.ArrayLike,
    *,
    block: int,
    time_block: int,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    buffer: int = 0,
    time_buffer: int = 0,
    seed: int = 0,
) -> Labels:
    """Blocks of ``block`` × ``block`` cells × ``time_block`` steps; a buffer of ``buffer`` cells and
    ``time_buffer`` steps around higher-priority blocks is excluded from the lower-priority sets."""
    r, c, t = (np.asarray(a, dtype=np.int64) for a in (rows, cols, steps))
    br, bc = block_index(r, c, block)
    bt = t // time_block
    keys, inverse = np.unique(np.stack([br, bc, bt], axis=1), axis=0, return_inverse=True)
    labels = _assign_units(len(keys), fractions, seed)[inverse.reshape(-1)]
    if buffer > 0 or time_buffer > 0:
        out = labels.copy()
        for step in np.unique(t):
            near_steps = np.abs(t - step) <= time_buffer
            for protected in (TEST, VALIDATION):
                source = (t == step) & (labels == protected)
                if not source.any():
                    continue
                here = _near_cells(r[source], c[source], r[near_steps], c[near_steps], buffer)
                idx = np.flatnonzero(near_steps)[here]
                lower = (out[idx] != EXCLUDED) & (out[idx] < protected) if protected == TEST else out[idx] == TRAIN
                out[idx[lower]] = EXCLUDED
        labels = out
    return labels


def _near_cells(
    src_r: npt.NDArray[np.int64], src_c: npt.NDArray[np.int64], r: npt.NDArray[np.int64], c: npt.NDArray[np.int64], buffer: int
) -> npt.NDArray[np.bool_]:
    r0 = min(src_r.min(), r.min()) - buffer
    c0 = min(src_c.min(), c.min()) - buffer
    shape = (int(max(src_r.max(), r.max()) - r0) + buffer + 1, int(max(src_c.max(), c.max()) - c0) + buffer + 1)
    grid = np.zeros(shape, dtype=bool)
    grid[src_r - r0, src_c - c0] = True
    return _dilate(grid, buffer)[r - r0, c - c0] if buffer > 0 else grid[r - r0, c - c0]


def split_hash(labels: npt.ArrayLike) -> str:
    """SHA-256 of the labels' bytes: equal hashes mean the same split of the same samples."""
    return hashlib.sha256(np.ascontiguousarray(np.asarray(labels, dtype=np.int8)).tobytes()).hexdigest()


def check_spatial_leakage(
    rows: npt.ArrayLike, cols: npt.ArrayLike, labels: npt.ArrayLike, buffer: int, steps: npt.ArrayLike | None = None, time_buffer: int = 0
) -> None:
    """Raise :class:`LeakageError` if a training sample lies within ``buffer`` cells (and ``time_buffer``
    steps, when ``steps`` are given) of a test or validation sample."""
    r, c = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    lab = np.asarray(labels)
    t = np.zeros_like(r) if steps is None else np.asarray(steps, dtype=np.int64)
    for protected in (TEST, VALIDATION):
        src = lab == protected
        if not src.any():
            continue
        for step in np.unique(t[src]):
            src_here = src & (t == step)
            candidates = (lab == TRAIN) & (np.abs(t - step) <= time_buffer)
            if not candidates.any():
                continue
            near = _near_cells(r[src_here], c[src_here], r[candidates], c[candidates], buffer)
            if near.any():
                i = np.flatnonzero(candidates)[near][0]
                raise LeakageError(
                    f"training sample {i} at cell ({r[i]}, {c[i]}) lies within {buffer} cells of a {SPLIT_NAMES[protected]} sample"
                )


def check_group_leakage(groups: npt.ArrayLike, labels: npt.ArrayLike) -> None:
    """Raise :class:`LeakageError` if a group has samples in two sets."""
    g, lab = np.asarray(groups), np.asarray(labels)
    kept = lab != EXCLUDED
    keys, inverse = np.unique(g[kept], return_inverse=True)
    sets = np.zeros((len(keys), 3), dtype=bool)
    sets[inverse.reshape(-1), lab[kept]] = True
    shared = np.flatnonzero(sets.sum(axis=1) > 1)
    if shared.size:
        raise LeakageError(f"{shared.size} groups are in more than one set, e.g. {keys[shared[0]]!r}")


def check_time_leakage(times: npt.ArrayLike, labels: npt.ArrayLike, gap: np.timedelta64 = np.timedelta64(0, "D")) -> None:
    """Raise :class:`LeakageError` if two sets' times interleave or come closer than ``gap``."""
    t, lab = np.asarray(times).astype("datetime64[ns]"), np.asarray(labels)
    spans = sorted((t[lab == k].min(), t[lab == k].max(), k) for k in (TRAIN, VALIDATION, TEST) if (lab == k).any())
    for (_, end, a), (start, _, b) in zip(spans, spans[1:], strict=False):
        if start - end <= np.timedelta64(gap).astype("timedelta64[ns]"):
            raise LeakageError(f"{SPLIT_NAMES[a]} ends at {end} and {SPLIT_NAMES[b]} starts at {start}: closer than the gap {gap}")
