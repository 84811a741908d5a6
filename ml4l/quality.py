"""Data-quality gates: Great Expectations suites (declared in ``expectations/*.yaml``), Data Docs, quarantine.

Each dataset is turned into a small table (:func:`era_month_table`,
:func:`modis_day_table`, or the joined month itself) and validated against its
suite in a Great Expectations file context under ``<lake>/reports/gx``, whose
Data Docs site collects every validation run (readable offline: ``ml4l.docs_assets``). A failed validation is recorded as
a quarantine marker ``<lake>/quarantine/<dataset>/<key>.json`` naming the failed
expectations; later steps refuse quarantined inputs (:func:`refuse_quarantined`)
and a later passing validation of the same key clears it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.readers.grib import decode, scan
from ml4l.readers.modis import QC_CLASSES, kept_classes
from ml4l.readers.modis.day import qc_classes
from ml4l.threads import cores_given
from ml4l.types import Month
from ml4l.validation_sample import SAMPLE_ROWS, sample_table, witness_rows
from ml4l.variables import BY_PARAM_ID, TIME_VARIABLE

SUITES_DIR: Traversable = resources.files("expectations")
"""The suites: ``expectations/`` of the source tree, shipped as package data, found where ml4l is installed."""
DATASETS = ("era_month", "modis_day", "joined_month", "ml_ready", "gapfill_cube", "downscale_inputs")
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
    rows: int | None = None
    """Rows of the table validated; ``rows_validated`` of them went through the suite (:mod:`ml4l.validation_sample`)."""
    rows_validated: int | None = None

    def summary(self) -> str:
        """``<dataset> <key>: <n> of <m> expectations failed: a, b``."""
        if self.success:
            return f"{self.dataset} {self.key}: all {self.evaluated} expectations passed"
        names = ", ".join(f.name for f in self.failed)
        return f"{self.dataset} {self.key}: {len(self.failed)} of {self.evaluated} expectations failed: {names}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- suites as data ----


def load_suite(dataset: str, directory: Traversable = SUITES_DIR) -> dict[str, Any]:
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


def era_month_table(lake: Lake, month: Month, messages_at_once: int | None = None) -> pd.DataFrame:
    """One row per GRIB message of the month's ERA_sfc and ERA_skin files.

    Columns: ``file, variable, time, grid, points, min, max, nan_over_land`` (land is
    ``lsm_v20 > 0.5`` from the constants store when it exists, else every point).
    The messages are decoded a few at a time (``messages_at_once``, default twice the
    threads given) and only their aggregates are kept: memory does not grow with the month.

    Raises
    ------
    InputError
        When a file is missing or not readable GRIB at all.
    """
    land = _land_mask(lake)
    at_once = messages_at_once or 2 * cores_given()
    rows = []
    for path in (lake.era_sfc(month), lake.era_skin(month)):
        local = lake.local(path)
        found = scan(local)
        grid_name = found.grid.name
        for start in range(0, len(found.messages), at_once):
            chunk = found.messages[start : start + at_once]
            for message, field_values in zip(chunk, decode(local, chunk), strict=True):
                known = BY_PARAM_ID.get(message.param_id)
                over_land = field_values if land is None or land.size != field_values.size else field_values[land]
                rows.append(
                    {
                        "file": os.path.basename(path),
                        "variable": known.name if known else f"param{message.param_id}",
                        "time": pd.Timestamp(message.valid_time),
                        "grid": grid_name,
                        "points": int(field_values.size),
                        "min": float(np.fmin.reduce(field_values)),  # NaN-skipping; NaN only when every point is
                        "max": float(np.fmax.reduce(field_values)),
                        "nan_over_land": int(np.count_nonzero(np.isnan(over_land))),
                    }
                )
    return pd.DataFrame(rows)


def _land_mask(lake: Lake) -> np.ndarray | None:
    if not lake.has_zarr(lake.era_constants):
        return None
    import zarr

    from ml4l.zarr_io import zarr_store

    return np.asarray(zarr.open_group(zarr_store(lake.era_constants), mode="r")["lsm_v20"][...]) > 0.5


def modis_day_table(days: list[Any], sample_rows: int = SAMPLE_ROWS, seed: int = 0) -> pd.DataFrame:
    """The pixels of a MODIS day as ``read_modis`` gives it (one dataset per file) that decide the ``modis_day`` suite.

    Columns: ``lst``, ``view_time`` (UTC), ``latitude``, ``longitude``, the pixel's QC class
    and its file's footprint (pixel centres, widened by 1e-6 degrees of rounding). A file
    of more than ``sample_rows`` pixels gives its witness rows and a seeded sample
    (:func:`ml4l.validation_sample.witness_rows`), found before any table is built: a
    full-size day (58M pixels) never becomes a table of them all.
    """
    suite = load_suite("modis_day")
    names = np.asarray(QC_CLASSES)
    frames = []
    for index, day in enumerate(days):
        south, north, west, east = day.attrs["footprint"]
        qc = day["qc"].to_numpy()
        footprint = {
            "footprint_south": south - 1e-6,
            "footprint_north": north + 1e-6,
            "footprint_west": west - 1e-6,
            "footprint_east": east + 1e-6,
        }
        columns: dict[str, Any] = {
            "lst": day["lst"].to_numpy(),
            "view_time": day["view_time"].to_numpy(),
            "latitude": day["latitude"].to_numpy(),
            "longitude": day["longitude"].to_numpy(),
            "qc_class": qc_classes(np.ones(qc.size, dtype=bool), qc),
            **{name: np.broadcast_to(np.float64(value), qc.size) for name, value in footprint.items()},
        }
        rows = witness_rows(columns, qc.size, suite, None, sample_rows, seed + index)
        take = slice(None) if rows is None else rows
        frames.append(
            pd.DataFrame(
                {
                    "lst": columns["lst"][take].astype(np.float64),
                    "view_time": columns["view_time"][take].astype(np.float64),
                    "latitude": columns["latitude"][take],
                    "longitude": columns["longitude"][take],
                    "qc_class": names[columns["qc_class"][take]],
                    **footprint,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def era_month_parameters(store_grid: str, hours: int) -> dict[str, Any]:
    """Run-time values of the ``era_month`` suite."""
    return {"expected_fields": len(TIME_VARIABLE) * hours, "store_grids": [store_grid]}


def modis_day_parameters(max_lst_error_k: int | None) -> dict[str, Any]:
    """Run-time values of the ``modis_day`` suite: the QC classes the recipe's filter keeps."""
    return {"kept_qc_classes": sorted(kept_classes(max_lst_error_k))}


def joined_month_parameters(threshold_km: float) -> dict[str, Any]:
    """Run-time values of the ``joined_month`` suite."""
    return {"threshold_km": threshold_km}


# ---- validation ----


def docs_index(lake: Lake) -> Path:
    """The Data Docs site's index page."""
    return lake.reports / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def widened(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with 32-bit numbers as 64-bit: GX 1.24 vectorises range checks only for int64 and float64."""
    narrow = {
        name: np.float64 if kind.kind == "f" else np.int64
        for name, kind in table.dtypes.items()
        if isinstance(kind, np.dtype) and kind.kind in "fiu" and kind.itemsize < 8
    }
    return table.astype(narrow) if narrow else table


def _context(lake: Lake) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="file", project_root_dir=str(lake.reports))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def validate(lake: Lake, dataset: str, key: str, table: pd.DataFrame, parameters: dict[str, Any] | None = None) -> Validation:
    """Validate ``table`` as ``dataset``/``key`` against its suite; render its Data Docs page; update the quarantine.

    The run is named ``<dataset>-<key>`` (no space: it names a folder of the site) and the page
    names its data asset and key, so the page and the index say which month (or day) they are
    about. The index is not rebuilt here (its cost grows with every stored result):
    :func:`refresh_docs` does that once per flow run. A table larger than a sample is
    validated on the rows that decide each expectation plus a seeded sample
    (:mod:`ml4l.validation_sample`): the same pass or fail as the whole table, at a flat cost.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    declared = load_suite(dataset)
    rows = len(table)
    table = widened(sample_table(table, declared, parameters))  # the whole table's pass or fail, on its witness rows
    name = f"{dataset} {key}"
    with lake.lock("gx-reports"):  # tasks of parallel flows share the file context and site
        context = _context(lake)
        suite = context.suites.add_or_update(_gx_suite(declared))
        source = context.data_sources.add_or_update_pandas(_DATASOURCE)
        asset = source.get_asset(dataset) if dataset in [a.name for a in source.assets] else source.add_dataframe_asset(dataset)
        batch = next((b for b in asset.batch_definitions if b.name == key), None) or asset.add_batch_definition_whole_dataframe(key)
        definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(name=name, validation_definitions=[definition], actions=[], result_format="SUMMARY")
        )
        run_id = RunIdentifier(run_name=f"{dataset}-{key}", run_time=pd.Timestamp.now(tz="UTC").to_pydatetime())
        result = checkpoint.run(batch_parameters={"dataframe": table}, expectation_parameters=parameters or {}, run_id=run_id)
        identifier, run = next(iter(result.run_results.items()))
        # a dataframe batch has no asset name in its spec: the page would say "Data asset: None"
        run.meta.setdefault("batch_spec", {})["data_asset_name"] = f"{dataset} (batch {key})"
        context.validation_results_store.set(identifier, run)
        docs = _render(lake, context, [identifier], build_index=False)
    failed = [_failure(r) for r in run.results if not r.success]
    outcome = Validation(dataset, key, bool(run.success), len(run.results), failed, docs, rows, len(table))
    if outcome.success:
        clear_quarantine(lake, dataset, key)
    else:
        quarantine(lake, dataset, key, outcome.summary(), outcome.failed, outcome.docs)
    return outcome


def _render(lake: Lake, context: Any, identifiers: list[Any], build_index: bool) -> str | None:
    """Render the pages of ``identifiers`` (and the index), served with local assets; the first page's URL."""
    from ml4l import docs_assets

    context.build_data_docs(resource_identifiers=identifiers, build_index=build_index)
    site = docs_index(lake).parent
    docs_assets.copy_into(site)
    pages = []
    for identifier in identifiers:
        urls = context.get_docs_sites_urls(resource_identifier=identifier)
        if urls and urls[0]["site_url"]:
            pages.append(Path(urls[0]["site_url"].removeprefix("file://")))
    for page in [*pages, *([docs_index(lake)] if build_index else [])]:
        docs_assets.localize(page, site)
    return f"file://{pages[0]}" if pages else None


def refresh_docs(lake: Lake) -> str | None:
    """Rebuild the Data Docs index and suite pages (once per flow run: this cost grows with the stored results).

    Returns the index's path, or ``None`` when nothing was ever validated in ``lake``.
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    if not (lake.reports / "gx").is_dir():
        return None
    with lake.lock("gx-reports"):
        context = _context(lake)
        suites = [ExpectationSuiteIdentifier(name=s.name) for s in context.suites.all()]
        if not suites:
            return None
        _render(lake, context, suites, build_index=True)
    return str(docs_index(lake))


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


def quarantine(
    lake: Lake, dataset: str, key: str, reason: str, failed: list[FailedExpectation] | None = None, docs: str | None = None
) -> str:
    """Record ``dataset``/``key`` as quarantined; returns the marker's path."""
    marker = lake.quarantine_record(dataset, key)
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
    marker = lake.quarantine_record(dataset, key)
    if lake.fs.exists(marker):
        lake.fs.rm(marker)
        return True
    return False


def quarantined(lake: Lake) -> list[dict[str, Any]]:
    """Every quarantine record, by dataset then key."""
    records = []
    for path in sorted(lake.fs.glob(lake.quarantine_record("*", "*"))):
        with lake.fs.open(path) as source:
            records.append(json.load(source))
    return records


def refuse_quarantined(lake: Lake, dataset: str, key: str) -> None:
    """Raise :class:`QuarantinedError` naming the failed expectations if ``dataset``/``key`` is quarantined."""
    marker = lake.quarantine_record(dataset, key)
    if lake.fs.exists(marker):
        with lake.fs.open(marker) as source:
            record = json.load(source)
        raise QuarantinedError(marker, f"quarantined: {record['reason']} (fix the input and re-run to clear it)")
