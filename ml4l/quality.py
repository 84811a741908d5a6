"""Data-quality gates: Great Expectations suites (declared in ``expectations/*.yaml``), Data Docs, quarantine.

Each dataset is turned into a small table (:func:`era_month_table`,
:func:`modis_day_table`, or the joined month itself) and validated against its
suite in a Great Expectations file context under ``<lake>/reports/gx``, whose
Data Docs site collects every validation run. A failed validation is recorded as
a quarantine marker ``<lake>/quarantine/<dataset>/<key>.json`` naming the failed
expectations; later steps refuse quarantined inputs (:func:`refuse_quarantined`)
and a later passing validation of the same key clears it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ml4l.errors import InputError
from ml4l.grib import decode, scan
from ml4l.lake import Lake
from ml4l.modis import ModisImage
from ml4l.types import Month
from ml4l.variables import BY_PARAM_ID, GROUPS, TIME_VARIABLE

SUITES_DIR = Path(__file__).resolve().parents[1] / "expectations"
DATASETS = ("era_month", "modis_day", "joined_month", "ml_ready")
_DATASOURCE = "ml4l"


class QuarantinedError(InputError):
    """An input is quarantined: a validation failed and has not passed since."""


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold."""

    name: str
    type: str
    column: str | None
    unexpected_percent: float | None
    observed: str | None


@dataclass
class Validation:
    """The outcome of validating one dataset key (a month or a day)."""

    dataset: str
    key: str
    success: bool
    evaluated: int
    failed: list[FailedExpectation] = field(default_factory=list)
    docs: str | None = None

    def summary(self) -> str:
        """``<dataset> <key>: <n> of <m> expectations failed: a, b``."""
        if self.success:
            return f"{self.dataset} {self.key}: all {self.evaluated} expectations passed"
        names = ", ".join(f.name for f in self.failed)
        return f"{self.dataset} {self.key}: {len(self.failed)} of {self.evaluated} expectations failed: {names}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- suites as data ----


def load_suite(dataset: str, directory: Path = SUITES_DIR) -> dict[str, Any]:
    """The suite of ``dataset`` as declared in ``<directory>/<dataset>.yaml``."""
    path = directory / f"{dataset}.yaml"
    if not path.is_file():
        raise ValueError(f"no expectation suite for {dataset!r} at {path}")
    suite = yaml.safe_load(path.read_text())
    names = [e["name"] for e in suite["expectations"]]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: expectation names must be unique")
    return suite


def _gx_suite(declared: dict[str, Any]) -> Any:
    import great_expectations as gx

    expectations = [
        {"type": e["type"], "kwargs": e["kwargs"], "meta": {"name": e["name"]}, "description": e.get("description")}
        for e in declared["expectations"]
    ]
    return gx.ExpectationSuite(name=declared["name"], expectations=expectations)


# ---- tables to validate ----


def era_month_table(lake: Lake, month: Month) -> pd.DataFrame:
    """One row per GRIB message of the month's ERA_sfc and ERA_skin files.

    Columns: ``file, variable, time, grid, points, min, max, nan_over_land`` (land is
    ``lsm_v20 > 0.5`` from the constants store when it exists, else every point).

    Raises
    ------
    InputError
        When a file is missing or not readable GRIB at all.
    """
    land = _land_mask(lake)
    rows = []
    for path in (lake.era_sfc(month), lake.era_skin(month)):
        local = lake.local(path)
        found = scan(local)
        values = decode(local, found.messages)
        for message, field_values in zip(found.messages, values, strict=True):
            known = BY_PARAM_ID.get(message.param_id)
            over_land = field_values if land is None or land.size != field_values.size else field_values[land]
            finite = field_values[~np.isnan(field_values)]
            rows.append(
                {
                    "file": os.path.basename(path),
                    "variable": known.name if known else f"param{message.param_id}",
                    "time": pd.Timestamp(message.valid_time),
                    "grid": found.grid.name,
                    "points": int(field_values.size),
                    "min": float(finite.min()) if finite.size else np.nan,
                    "max": float(finite.max()) if finite.size else np.nan,
                    "nan_over_land": int(np.isnan(over_land).sum()),
                }
            )
    return pd.DataFrame(rows)


def _land_mask(lake: Lake) -> np.ndarray | None:
    if not lake.fs.exists(lake.path("era", "constants.zarr", "zarr.json")):
        return None
    import zarr

    return np.asarray(zarr.open_group(lake.era_constants, mode="r")["lsm_v20"][...]) > 0.5


def modis_day_table(image: ModisImage) -> pd.DataFrame:
    """One row per observed pixel (``lst``, ``view_time``) with the file's grid as constant columns."""
    _, _, lst, view = image.observed()
    res_lat, res_lon = image.resolution
    rows, columns = image.lst.shape
    return pd.DataFrame(
        {
            "lst": lst.astype(np.float64),
            "view_time": view.astype(np.float64),
            "origin_lat": float(image.lat[0] + res_lat / 2),
            "origin_lon": float(image.lon[0] - res_lon / 2),
            "resolution_lat": res_lat,
            "resolution_lon": res_lon,
            "rows_times_two": 2 * rows,
            "columns": columns,
        }
    )


def era_month_parameters(store_grid: str, hours: int) -> dict[str, Any]:
    """Run-time values of the ``era_month`` suite."""
    return {"expected_fields": len(TIME_VARIABLE) * hours, "store_grids": [store_grid]}


def modis_day_parameters(resolution: float) -> dict[str, Any]:
    """Run-time values of the ``modis_day`` suite: the declared pixel size, to 1e-6 degrees."""
    return {"resolution_min": resolution - 1e-6, "resolution_max": resolution + 1e-6}


def joined_month_parameters(threshold_km: float) -> dict[str, Any]:
    """Run-time values of the ``joined_month`` suite."""
    return {"threshold_km": threshold_km}


# ---- validation ----


def reports_dir(lake: Lake) -> Path:
    """Where the GX context and its Data Docs live: ``<lake>/reports`` (a local cache for remote lakes)."""
    if lake.is_local:
        return Path(lake.root) / "reports"
    return Path(os.environ.get("TMPDIR", "/tmp")) / "ml4l-reports" / lake.root.replace("://", "_").replace("/", "_")


def docs_index(lake: Lake) -> Path:
    """The Data Docs site's index page."""
    return reports_dir(lake) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def widened(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with 32-bit numbers as 64-bit: GX 1.24 vectorises range checks only for int64 and float64."""
    narrow = {name: np.float64 if kind.kind == "f" else np.int64 for name, kind in table.dtypes.items()
              if isinstance(kind, np.dtype) and kind.kind in "fiu" and kind.itemsize < 8}
    return table.astype(narrow) if narrow else table


def validate(lake: Lake, dataset: str, key: str, table: pd.DataFrame, parameters: dict[str, Any] | None = None) -> Validation:
    """Validate ``table`` as ``dataset``/``key`` against its suite; update Data Docs and the quarantine."""
    import great_expectations as gx

    table = widened(table)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    root = reports_dir(lake)
    name = f"{dataset} {key}"
    with lake.lock("gx-reports"):  # tasks of parallel flows share the file context and site
        context = gx.get_context(mode="file", project_root_dir=str(root))
        context.variables.progress_bars = {"globally": False}
        suite = context.suites.add_or_update(_gx_suite(load_suite(dataset)))
        source = context.data_sources.add_or_update_pandas(_DATASOURCE)
        asset = source.get_asset(dataset) if dataset in [a.name for a in source.assets] else source.add_dataframe_asset(dataset)
        batch = next((b for b in asset.batch_definitions if b.name == key), None) or asset.add_batch_definition_whole_dataframe(key)
        definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update-data-docs")],
                result_format="SUMMARY",
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": table}, expectation_parameters=parameters or {})
        identifier, run = next(iter(result.run_results.items()))
        urls = context.get_docs_sites_urls(resource_identifier=identifier)
    failed = [_failure(r) for r in run.results if not r.success]
    outcome = Validation(dataset, key, bool(run.success), len(run.results), failed, urls[0]["site_url"] if urls else None)
    if outcome.success:
        clear_quarantine(lake, dataset, key)
    else:
        quarantine(lake, dataset, key, outcome.summary(), outcome.failed, outcome.docs)
    return outcome


def _failure(result: Any) -> FailedExpectation:
    config = result.expectation_config
    details = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        observed: str | None = f"error: {result.exception_info.get('exception_message')}"
    else:
        observed = None if details.get("observed_value") is None else str(details.get("observed_value"))
    return FailedExpectation(
        name=(config.meta or {}).get("name", config.type),
        type=config.type,
        column=config.kwargs.get("column"),
        unexpected_percent=details.get("unexpected_percent"),
        observed=observed,
    )


# ---- quarantine ----


def quarantine_path(lake: Lake, dataset: str, key: str) -> str:
    """Where the quarantine record of ``dataset``/``key`` lives."""
    return lake.path("quarantine", dataset, f"{key}.json")


def quarantine(lake: Lake, dataset: str, key: str, reason: str, failed: list[FailedExpectation] | None = None, docs: str | None = None) -> str:
    """Record ``dataset``/``key`` as quarantined; returns the marker's path."""
    marker = quarantine_path(lake, dataset, key)
    lake.fs.makedirs(marker.rsplit("/", 1)[0], exist_ok=True)
    record = {
        "dataset": dataset,
        "key": key,
        "reason": reason,
        "failed": [asdict(f) for f in failed or []],
        "docs": docs,
        "since": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    }
    with lake.fs.open(marker, "w") as out:
        json.dump(record, out, indent=2)
    return marker


def clear_quarantine(lake: Lake, dataset: str, key: str) -> bool:
    """Lift the quarantine of ``dataset``/``key``; whether there was one."""
    marker = quarantine_path(lake, dataset, key)
    if lake.fs.exists(marker):
        lake.fs.rm(marker)
        return True
    return False


def quarantined(lake: Lake) -> list[dict[str, Any]]:
    """Every quarantine record, by dataset then key."""
    records = []
    for path in sorted(lake.fs.glob(lake.path("quarantine", "*", "*.json"))):
        with lake.fs.open(path) as source:
            records.append(json.load(source))
    return records


def refuse_quarantined(lake: Lake, dataset: str, key: str) -> None:
    """Raise :class:`QuarantinedError` naming the failed expectations if ``dataset``/``key`` is quarantined."""
    marker = quarantine_path(lake, dataset, key)
    if lake.fs.exists(marker):
        with lake.fs.open(marker) as source:
            record = json.load(source)
        raise QuarantinedError(marker, f"quarantined: {record['reason']} (fix the input and re-run to clear it)")
