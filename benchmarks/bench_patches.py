"""Patch extraction for downscaling (seed 002): vectorised against the seed's Python loop, one full day.

One cloud-free day of the seed's 603 x 409 grid (day band), on one core. The seed built each
9 x 9 patch in a Python loop over pixels (12.6 s a day, as its report says); the same loop is
timed here on the same day, and both must give the same samples.

    nice .venv/bin/python -m benchmarks.bench_patches [--repeats 5]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before NumPy loads
    os.environ.setdefault(_name, "1")

import argparse
import time

import numpy as np
import numpy.typing as npt

from ml4l.usecases.downscale.patches import FEATURES, OVERPASS_HOUR, Heights, Patches, extract, valid_pixels
from ml4l.usecases.downscale.recipe import PATCH, WINDOW_RADIUS, SampleSpec
from ml4l.usecases.downscale.sample import LST_SCALE_K, make_truth, observe


def seed_loop_patches(
    lst: npt.NDArray[np.float64],
    qa: npt.NDArray[np.float64],
    dem: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    day: int,
    days_in_year: int,
    band: str,
) -> Patches:
    """The seed's way: a Python loop over every pixel, slicing its 9 x 9 window (the reference)."""
    valid = valid_pixels(lst, qa, band)
    angle_day, angle_time = 2 * np.pi * day / days_in_year, 2 * np.pi * OVERPASS_HOUR[band] / 24
    features, target, rows, cols = [], [], [], []
    height, width = lst.shape
    for r in range(WINDOW_RADIUS, height - WINDOW_RADIUS):
        for c in range(WINDOW_RADIUS, width - WINDOW_RADIUS):
            window = (slice(r - WINDOW_RADIUS, r + WINDOW_RADIUS + 1), slice(c - WINDOW_RADIUS, c + WINDOW_RADIUS + 1))
            if not valid[window].all():
                continue
            lst_avg = lst[window].mean()
            heights = dem[window]
            height_avg = heights.mean()
            features.append(
                [
                    np.cos(angle_day),
                    np.sin(angle_day),
                    np.cos(angle_time),
                    np.sin(angle_time),
                    lon[c],
                    lat[r],
                    lst_avg,
                    height_avg,
                    *(heights - height_avg).ravel(),
                ]
            )
            target.append(lst[r, c] - lst_avg)
            rows.append(r)
            cols.append(c)
    n = len(target)
    return Patches(
        np.asarray(features, dtype=np.float32).reshape(n, len(FEATURES)),
        np.asarray(target, dtype=np.float32),
        np.full(n, np.nan, dtype=np.float32),
        np.asarray(rows, dtype=np.int16),
        np.asarray(cols, dtype=np.int16),
    )


def full_day() -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    int,
]:
    """Day 180 of the sample on the whole 603 x 409 grid, cloud-free (QA 3 on all unmasked land, the most
    patches, so the most work for both methods): day-band LST (K), QA, DEM (m), lat, lon."""
    spec = SampleSpec(
        rows=603,
        cols=409,
        row_offset=0,
        col_offset=0,
        day_step=1,
        skipped_days=tuple(d for d in range(366) if d != 180),
    )
    truth = make_truth(spec)
    counts = observe(truth, spec)[0]
    qa = np.where(np.isfinite(counts[1]), 3.0, 0.0)
    return (
        counts[1].astype(np.float64) * LST_SCALE_K,
        qa,
        truth.dem.astype(np.float64),
        truth.lat,
        truth.lon,
        int(truth.days[0]),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs of the vectorised extraction (best is reported) [5]"
    )
    args = parser.parse_args(argv)
    lst, qa, dem, lat, lon, day = full_day()
    print(
        f"one day of {lst.shape[0]} x {lst.shape[1]} pixels, day band; {PATCH} x {PATCH} patches, {len(FEATURES)} features"
    )

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fast = extract(
            lst, qa, Heights.of(dem), lat, lon, day, 366, "day"
        )  # heights rebuilt each time: the whole per-day cost
        times.append(time.perf_counter() - start)
    best = min(times)
    start = time.perf_counter()
    slow = seed_loop_patches(lst, qa, dem, lat, lon, day, 366, "day")
    loop = time.perf_counter() - start

    same_rows = np.array_equal(fast.rows, slow.rows) and np.array_equal(fast.cols, slow.cols)
    # float32 features from float64 sums in two different orders: a few ulps of the largest value
    feature_error = (
        float(np.max(np.abs(fast.features - slow.features) / np.maximum(np.abs(slow.features), 1.0)))
        if same_rows
        else np.inf
    )
    target_error = float(np.max(np.abs(fast.target - slow.target))) if same_rows else np.inf
    print(
        f"samples: {fast.target.size} vectorised, {slow.target.size} seed loop; same centres: {same_rows}; "
        f"largest feature difference {feature_error:.2g} (relative), target {target_error:.2g} K"
    )
    print(f"{'method':<34} {'s / day':>9} {'days / s':>9}")
    print(
        f"{'vectorised (sliding_window_view)':<34} {best:>9.3f} {1 / best:>9.2f}   (best of {args.repeats}: {', '.join(f'{t:.3f}' for t in times)})"
    )
    print(f"{'seed Python loop':<34} {loop:>9.3f} {1 / loop:>9.3f}")
    print(f"speed-up {loop / best:.0f}x")
    if not same_rows or feature_error > 1e-6 or target_error > 1e-5:
        raise SystemExit("the vectorised patches differ from the seed loop's")


if __name__ == "__main__":
    main()
