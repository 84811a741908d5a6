"""Prediction: LST from a registered model for every land cell and hour of a month in the ERA store, into Zarr.

The model normalises its raw features itself, and its run carries the feature list
(``dataset/normalisation.json``), so prediction needs only the model URI and the
ERA stores. Output: ``predictions/<model name>/<YYYY-MM>.zarr`` with ``lst``
(float32 K, ``(time, cell)``, NaN where the cell has no land) and the cells' ``latitude``/``longitude``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ml4l.era_store import consolidating
from ml4l.errors import InputError
from ml4l.join import FeatureReader
from ml4l.lake import Lake
from ml4l.ml.tracking import tracking_uri, use_store
from ml4l.types import Month
from ml4l.usecases.lst.dataset import with_deltas

HOURS_PER_WRITE = 24
PREDICT_BATCH = 16_384


@dataclass(frozen=True)
class PredictionReport:
    """What :func:`predict_month` wrote."""

    month: Month
    path: str
    model_uri: str
    run_id: str
    hours: int
    land_cells: int
    mean_lst: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_model(lake: Lake, model_uri: str, uri: str | None = None) -> tuple[Any, dict[str, Any], str]:
    """The Keras model at ``model_uri`` (raw features in, see :func:`ml4l.usecases.lst.train.serving_model`), the normalisation
    logged with its run (its feature list), and the run id.

    ``uri`` is the MLflow tracking server; by default the lake's SQLite store.
    """
    import mlflow

    use_store(uri or tracking_uri(lake))
    # the Keras model itself, not pyfunc: pyfunc predicts in batches of 32, 30x slower here
    model = mlflow.tensorflow.load_model(model_uri)
    run_id = str(mlflow.models.get_model_info(model_uri).run_id)
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dataset/normalisation.json")
    with open(local) as source:
        return model, dict(json.load(source)), run_id


def predict_month(lake: Lake, month: Month, model_uri: str, model_name: str, uri: str | None = None) -> PredictionReport:
    """Predict every cell with land (``lsm_v20 > 0``) and hour of ``month``; writes ``lake.prediction(model_name, month)``.

    Coastal cells count as land: MODIS land pixels are joined to them in training.

    The store is written hidden, a day at a time, then swapped in whole; a killed run's staging is swept first.

    Raises
    ------
    InputError
        If the ERA store has no hour of ``month``, or the month is not ingested.
    """
    model, normalisation, run_id = load_model(lake, model_uri, uri)
    features: list[str] = normalisation["features"]
    reader = FeatureReader(lake)
    hours = np.flatnonzero(np.asarray(reader.times.strftime("%Y-%m") == month))
    if hours.size == 0:
        raise InputError(lake.era_timevar, f"no hour of {month} in the ERA store")
    land = np.flatnonzero(reader.constants["lsm_v20"] > 0)
    size = reader.grid.size

    template = xr.Dataset(
        {
            "lst": (
                ("time", "cell"),
                _nan_array((hours.size, size), (HOURS_PER_WRITE, size)),
                {"units": "K", "long_name": "predicted MODIS land-surface temperature"},
            )
        },
        coords={"time": reader.times[hours], "latitude": ("cell", reader.grid.lat), "longitude": ("cell", reader.grid.lon)},
        attrs={"model_uri": model_uri, "run_id": run_id, "grid": reader.grid.name, "month": month},
    )
    target = lake.prediction(model_name, month)
    lake.remove_stale_staging(target)  # what a killed prediction of this month left (a live one's is spared)
    total, count = 0.0, 0
    with lake.replace_whole(target) as staging:
        with consolidating():
            template.to_zarr(
                staging,
                mode="w-",
                compute=False,
                zarr_format=3,
                consolidated=True,
                encoding={"lst": {"chunks": (HOURS_PER_WRITE, size)}, "time": {"units": "hours since 1970-01-01", "dtype": "int64"}},
            )
        output = zarr.open_group(staging, mode="r+")["lst"]
        for start in range(0, hours.size, HOURS_PER_WRITE):
            block = hours[start : start + HOURS_PER_WRITE]
            frame = with_deltas(pd.DataFrame(reader.at(np.repeat(block, land.size), np.tile(land, block.size))))
            if frame["skt"].isna().all():
                raise InputError(lake.era_timevar, f"{month} is not ingested (no skt at {reader.times[block[0]]})")
            raw = {name: frame[name].to_numpy(np.float32) for name in features}  # the model normalises them itself
            predicted = np.asarray(model.predict(raw, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32).reshape(block.size, land.size)
            values = np.full((block.size, size), np.nan, dtype=np.float32)
            values[:, land] = predicted
            output[start : start + block.size, :] = values
            total, count = total + float(np.nansum(predicted)), count + int(np.isfinite(predicted).sum())
    return PredictionReport(month, target, model_uri, run_id, int(hours.size), int(land.size), total / max(count, 1))


def _nan_array(shape: tuple[int, int], chunks: tuple[int, int]) -> Any:
    import dask.array as da

    return da.full(shape, np.nan, dtype=np.float32, chunks=chunks)


def read_predictions(lake: Lake, model_name: str, month: Month) -> xr.Dataset:
    """The predictions of ``model_name`` for ``month``."""
    return xr.open_zarr(lake.prediction(model_name, month), consolidated=True)
