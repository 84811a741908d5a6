"""An installed ml4l carries its Great Expectations suites (``expectations/``) and finds them with importlib.resources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SOURCES = ("pyproject.toml", "README.md", "ml4l", "flows", "tasks", "blocks", "expectations")

_FIND_SUITES = """
import json, ml4l, ml4l.quality as quality
print(json.dumps({"ml4l": ml4l.__file__, "suites": str(quality.SUITES_DIR),
                  "era_month": quality.load_suite("era_month")["name"]}))
"""


def test_the_wheel_ships_the_suites_and_the_installed_package_finds_them(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in _SOURCES:  # a copy: building in place would leave build/ in the shared checkout
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "wheel"), str(source)], check=True, timeout=600)
    wheel = next((tmp_path / "wheel").glob("ml4l-*.whl"))
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("expectations/")}
    assert {f"expectations/{p.name}" for p in (REPO / "expectations").glob("*.yaml")} <= shipped

    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                   check=True, timeout=600)

    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", _FIND_SUITES], capture_output=True, text=True, check=True, env=env,
                          cwd=tmp_path, timeout=300)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["ml4l"].startswith(str(target)) and found["suites"].startswith(str(target))
    assert found["era_month"] == "era_month"
