"""The lake owns every path: no module but ``ml4l/lake.py`` joins paths onto the lake root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ml4l.lake import Lake

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("ml4l", "flows", "tasks")
OWNER = REPO / "ml4l" / "lake.py"

LAKE = r"[\w.]*lake\w*"
"""A name that holds a lake or its root: ``lake``, ``self.lake``, ``platform_lake``, ``lake_root``."""
ROOT_JOINS = {
    "lake.path(...)": re.compile(rf"\b{LAKE}\.path\("),
    "root + ...": re.compile(rf"\b{LAKE}(\.root)?\s*\+\s*['\"f]"),
    'f"{root}/..."': re.compile(rf"\{{{LAKE}(\.root)?\}}/"),
    "os.path.join(root, ...)": re.compile(rf"\b(os\.path|posixpath|ntpath)\.join\(\s*{LAKE}(\.root)?\b"),
    "Path(root)": re.compile(rf"\b(Path|PurePosixPath|UPath)\(\s*{LAKE}(\.root)?\s*\)"),
    "root / ...": re.compile(rf"\b{LAKE}\.root\s*/"),
}


def root_joins(text: str) -> list[tuple[int, str, str]]:
    """``(line number, kind, line)`` of every path join onto a lake root in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in ROOT_JOINS.items():
            if pattern.search(line):
                found.append((number, kind, line.strip()))
    return found


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('    return lake.path("ml", name)', "lake.path(...)"),
        ('        return self.lake.path("raw", "downscale")', "lake.path(...)"),
        ('    directory = Path(lake.root) / "mlflow"', "Path(root)"),
        ('    target = f"{lake.root}/joined/x"', 'f"{root}/..."'),
        ('    target = f"{lake_root}/joined/x"', 'f"{root}/..."'),
        ('    target = lake.root + "/joined"', "root + ..."),
        ('    target = os.path.join(lake.root, "joined")', "os.path.join(root, ...)"),
        ('    target = posixpath.join(lake_root, "joined")', "os.path.join(root, ...)"),
    ],
)
def test_the_grep_sees_each_form_of_a_root_join(line: str, kind: str) -> None:
    assert [k for _, k, _ in root_joins(line)] == [kind]


@pytest.mark.parametrize(
    "line",
    [
        '    return lake.prediction(model, month)',
        '    print(f"Lake {lake.root}")',
        '    lake = Lake(lake_root)',
        '    with lake.fs.open(lake.ml_split(name, "train"), "rb") as source:',
        '    return f"{self.root}/tiles.geojson"',
    ],
)
def test_the_grep_passes_named_locations(line: str) -> None:
    assert root_joins(line) == []


def test_no_module_but_the_lake_joins_paths_onto_its_root() -> None:
    offending = [
        f"{path.relative_to(REPO)}:{number}: {kind}: {line}"
        for folder in SCANNED
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != OWNER
        for number, kind, line in root_joins(path.read_text())
    ]
    assert not offending, "paths joined onto the lake root outside ml4l/lake.py (give Lake a named location):\n" + "\n".join(offending)


def test_named_locations_follow_the_documented_layout() -> None:
    lake = Lake("/l")
    assert lake.joined_month("2019-02") == "/l/joined/year=2019/month=02"
    assert lake.joined_table("2019-02") == "/l/joined/year=2019/month=02/part-0.parquet"
    assert lake.joined_table("*") == "/l/joined/year=*/month=*/part-0.parquet"
    assert lake.joined_staging("2019-02-abc") == "/l/joined/_staging/2019-02-abc"
    assert lake.ml_split("default", "train") == "/l/ml/default/train.parquet"
    assert lake.ml_normalisation("*") == "/l/ml/*/normalisation.json"
    assert lake.prediction("m", "2019-02") == "/l/predictions/m/2019-02.zarr"
    assert lake.quarantine_record("joined_month", "2019-02") == "/l/quarantine/joined_month/2019-02.json"
    assert lake.rejected("ml_ready", "default") == "/l/quarantine/ml_ready/default.rejected"
    assert lake.status_record("2019-02") == "/l/status/monthly/2019-02.json"
    assert lake.era_statistics("2019-02") == "/l/era/_statistics/2019-02.json"
    assert lake.usecase("gapfill", "cubes", "x.zarr") == "/l/gapfill/cubes/x.zarr"
    assert lake.usecase_raw("tiles", "demo") == "/l/raw/tiles/demo"
    assert Lake("memory://l").prediction("m", "2019-02") == "memory://l/predictions/m/2019-02.zarr"


@pytest.mark.parametrize("name", ["raw", "era", "joined", "ml", "../x", "a/b", "", "."])
def test_a_use_case_cannot_write_into_the_platforms_folders_or_leave_the_lake(name: str) -> None:
    with pytest.raises(ValueError, match="use case"):
        Lake("/l").usecase(name)
