"""Helpers shared by tests and benchmarks: corrupt sample inputs the way real ones go wrong, write large random sets, compare lakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import eccodes
import numpy as np
import pyarrow as pa
import pandas as pd
import pyarrow.parquet as pq
import xarray as xr

from ml4l.config import JoinConfig
from ml4l.dataset import SHARD_ROWS, TARGET
from ml4l.join import join_month, read_joined
from ml4l.lake import Lake


def rewrite(path: str, keep: Callable[[int, int], bool]) -> None:
    """Rewrite a GRIB file keeping the messages for which ``keep(index, handle)`` holds."""
    kept = []
    with open(path, "rb") as stream:
        index = 0
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            if keep(index, handle):
                kept.append(eccodes.codes_get_message(handle))
            eccodes.codes_release(handle)
            index += 1
    Path(path).write_bytes(b"".join(kept))


def change_values(path: str, short_name: str, change: Callable[[np.ndarray], np.ndarray], first_only: bool = False) -> None:
    """Rewrite a GRIB file with ``change`` applied to the values of every ``short_name`` field.

    NaN values are written as missing points of a bitmap, as ERA5 does for undefined points.
    """
    out = []
    done = False
    with open(path, "rb") as stream:
        while (handle := eccodes.codes_grib_new_from_file(stream)) is not None:
            if eccodes.codes_get(handle, "shortName") == short_name and not (first_only and done):
                values = change(eccodes.codes_get_values(handle))
                if np.isnan(values).any():
                    eccodes.codes_set(handle, "bitmapPresent", 1)
                    values = np.where(np.isnan(values), eccodes.codes_get(handle, "missingValue"), values)
                eccodes.codes_set_values(handle, values)
                done = True
            out.append(eccodes.codes_get_message(handle))
            eccodes.codes_release(handle)
    Path(path).write_bytes(b"".join(out))


def append_first_message(path: str) -> None:
    """Duplicate the file's first field (the same variable and hour twice)."""
    with open(path, "rb") as stream:
        handle = eccodes.codes_grib_new_from_file(stream)
        first = eccodes.codes_get_message(handle)
        eccodes.codes_release(handle)
    with open(path, "ab") as out:
        out.write(first)


def write_random_ml_ready(lake: Lake, name: str, shards: int, features: int) -> int:
    """Write ``ml/<name>/train.parquet`` of random rows, ``shards`` row groups of SHARD_ROWS; returns the feature bytes."""
    names = [f"f{i}" for i in range(features)]
    directory = Path(lake.path("ml", name))
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(directory / "train.parquet", pa.schema([(n, pa.float32()) for n in [*names, TARGET]])) as writer:
        for _ in range(shards):
            columns = rng.normal(size=(features + 1, SHARD_ROWS)).astype(np.float32)
            writer.write_table(pa.table(dict(zip([*names, TARGET], columns, strict=True))), row_group_size=SHARD_ROWS)
    (directory / "normalisation.json").write_text(json.dumps({"features": names}))
    return shards * SHARD_ROWS * features * 4


def assert_equals_uninterrupted(lake: Lake, ingested: Lake, months: list[str], join: JoinConfig) -> None:
    """``lake``'s joined months and ERA store equal the library's own join of ``ingested``, and no staging is left."""
    for month in months:
        join_month(ingested, month, join)
        pd.testing.assert_frame_equal(read_joined(lake, month), read_joined(ingested, month))
    got, want = xr.open_zarr(lake.era_timevar), xr.open_zarr(ingested.era_timevar)
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values)
    root = Path(lake.root)
    assert not [*root.rglob(".*.tmp-*"), *root.rglob(".*.old-*"), *(root / "joined" / "_staging").glob("*")]
