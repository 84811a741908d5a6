"""Fill every land cell of a cube: ``gapfill/<model>/lst_filled.zarr``.

The store has the cube's grid, ``lst`` (K; observed where observed, the model's value elsewhere on land,
NaN at sea) and ``lst_source`` (0 observed, 1 filled, -1 sea). It is written as a template, then one
region write per time chunk, in a hidden staging store swapped in whole when the last chunk is written:
readers never see a half-filled store, and a re-run writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
import numpy.typing as npt
import xarray as xr
import zarr

from ml4l.lake import Lake
from ml4l.usecases.gapfill.cube import Cube, cube_attrs, filled_path
from ml4l.usecases.gapfill.dataset import feature_matrix, neighbourhood
from ml4l.usecases.gapfill.model import GapFiller

OBSERVED, FILLED, SEA = 0, 1, -1


def fill_steps(cube: Cube, model: GapFiller, steps: slice, radius: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
    """``lst`` and ``lst_source`` of ``steps``: observed values kept, land gaps predicted from every observed cell."""
    lst, t2m = cube.lst[steps], cube.t2m[steps]
    observed = np.isfinite(lst) & cube.land[None]
    nbr_mean, nbr_share = neighbourhood(lst, t2m, observed, radius)
    gaps = cube.land[None] & ~observed
    local, row, col = np.nonzero(gaps)
    step = local + (steps.start or 0)
    x = feature_matrix(cube, step, row, col, nbr_mean[local, row, col], nbr_share[local, row, col])
    filled = np.where(observed, lst, np.float32(np.nan)).astype(np.float32)
    filled[local, row, col] = model.predict(x, row, col)
    source = np.where(observed, OBSERVED, np.where(cube.land[None], FILLED, SEA)).astype(np.int8)
    return filled, source


@dataclass(frozen=True)
class FillReport:
    path: str
    steps: int
    chunks: int
    filled_cells: int
    observed_cells: int

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "steps": self.steps,
            "chunks": self.chunks,
            "filled_cells": self.filled_cells,
            "observed_cells": self.observed_cells,
        }


def write_filled(lake: Lake, cube: Cube, model: GapFiller, model_name: str, recipe_json: str, radius: int, time_chunk: int) -> FillReport:
    """Write ``gapfill/<model_name>/lst_filled.zarr``: template, region writes per ``time_chunk`` steps, swap."""
    target = filled_path(lake, model_name)
    shape = cube.shape
    chunks = (time_chunk, shape[1], shape[2])
    template = xr.Dataset(
        {
            "lst": (
                ("time", "lat", "lon"),
                da.full(shape, np.nan, dtype=np.float32, chunks=chunks),
                {"units": "K", "long_name": "Land surface temperature, gaps filled"},
            ),
            "lst_source": (
                ("time", "lat", "lon"),
                da.full(shape, SEA, dtype=np.int8, chunks=chunks),
                {"flag_values": [SEA, OBSERVED, FILLED], "flag_meanings": "sea observed filled"},
            ),
        },
        coords={
            "time": cube.time,
            "lat": ("lat", cube.lat, {"units": "degrees_north"}),
            "lon": ("lon", cube.lon, {"units": "degrees_east"}),
        },
        attrs={**cube_attrs("gapfill_filled", recipe_json), "source_cube": cube.path, "model": model_name},
    )
    encoding = {name: {"chunks": chunks} for name in ("lst", "lst_source")}
    filled_cells = observed_cells = 0
    n_chunks = 0
    with lake.replace_whole(target) as staging:
        template.to_zarr(staging, mode="w-", compute=False, zarr_format=3, consolidated=False, encoding=encoding)
        arrays = {name: zarr.open_array(f"{staging}/{name}", mode="r+") for name in ("lst", "lst_source")}
        for start in range(0, shape[0], time_chunk):
            region = slice(start, min(start + time_chunk, shape[0]))
            lst, source = fill_steps(cube, model, region, radius)
            arrays["lst"][region] = lst
            arrays["lst_source"][region] = source
            filled_cells += int((source == FILLED).sum())
            observed_cells += int((source == OBSERVED).sum())
            n_chunks += 1
    return FillReport(target, shape[0], n_chunks, filled_cells, observed_cells)
