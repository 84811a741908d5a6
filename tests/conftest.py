"""Shared fixtures: a tiny recipe, its sample inputs written once, and ingested copies."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml4l.config import Recipe, load_recipe
from ml4l.era_store import create_timevar_store, ingest_constants, ingest_month
from ml4l.join import join_month, read_joined
from ml4l.lake import Lake
from ml4l.usecases.lst.sample import generate

TINY = {
    "name": "tiny",
    "grid": "N32",
    "period": {"start": "2019-01", "end": "2019-02", "days": 1},
    "sample": {"modis_resolution": 2.0, "seed": 7, "modis_formats": ["tif", "nc"], "bits_per_value": 16},
    # N32 points are ~300 km apart: a threshold below the largest nearest distance, so some pixels are dropped
    "join": {"threshold_km": 150.0, "lat_limit": 70.0},
}

requires_gpu = pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="needs CuPy and a CUDA device")


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite) for every in-process flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def tiny_recipe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipes") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="session")
def tiny_recipe(tiny_recipe_path: Path) -> Recipe:
    return load_recipe(tiny_recipe_path)


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory: pytest.TempPathFactory, tiny_recipe: Recipe) -> Lake:
    """Raw sample inputs of the tiny recipe; read-only for tests."""
    lake = Lake.at(str(tmp_path_factory.mktemp("sample-lake")))
    generate(tiny_recipe, lake)
    return lake


@pytest.fixture
def raw_lake(tmp_path: Path, sample_lake: Lake) -> Lake:
    """A private copy of the sample inputs, free to corrupt."""
    shutil.copytree(sample_lake.path("raw"), tmp_path / "raw")
    return Lake.at(str(tmp_path))


@pytest.fixture
def ingested_lake(raw_lake: Lake, tiny_recipe: Recipe) -> Lake:
    """The tiny recipe ingested: both stores written, every month complete."""
    create_timevar_store(raw_lake, tiny_recipe.grid, tiny_recipe.period)
    ingest_constants(raw_lake)
    for month in tiny_recipe.period.months:
        ingest_month(raw_lake, month)
    return raw_lake


@pytest.fixture
def joined_lake(ingested_lake: Lake, tiny_recipe: Recipe) -> Lake:
    """The tiny lake joined, plus a December 2018 made of January shifted back 31 days (a third month)."""
    for month in tiny_recipe.period.months:
        join_month(ingested_lake, month, tiny_recipe.join)
    december = read_joined(ingested_lake, "2019-01")
    december["time"] = december["time"] - pd.Timedelta(days=31)
    target = Path(ingested_lake.path("joined", "year=2018", "month=12"))
    target.mkdir(parents=True)
    december.to_parquet(target / "part-0.parquet", index=False)
    return ingested_lake
