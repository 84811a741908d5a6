"""Importing the library leaves the process as it was: no environment variable and no warnings filter changed.

Third-party packages may install warnings filters of their own when imported (numpy, zarr do), so the probe first
imports every non-ml4l module that importing ml4l loads, then compares the state before and after ml4l's own modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_LOADED = "import json, sys\nimport {module}\nprint(json.dumps([m for m in sys.modules if m.split('.')[0] != 'ml4l']))"

_PROBE = """
import importlib, json, os, sys, warnings
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:  # private or platform modules that cannot be imported alone; their packages are
        pass
environ, filters = dict(os.environ), list(warnings.filters)
import {module}
print(json.dumps({{"environ": sorted(k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k)),
                   "filters": [repr(f) for f in warnings.filters if f not in filters]
                   + [repr(f) for f in filters if f not in warnings.filters]}}))
"""

_ENV = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=_ENV, timeout=300)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("module", ["ml4l", "ml4l.usecases.lst.train", "ml4l.era_store", "ml4l.quality", "ml4l.usecases.lst.predict"])
def test_import_changes_no_environment_variable_and_no_warnings_filter(module: str) -> None:
    loaded = _run(_LOADED.format(module=module))
    assert json.loads(_run(_PROBE.format(module=module), loaded)) == {"environ": [], "filters": []}


def test_the_keras_backend_is_set_where_keras_is_imported() -> None:
    script = "import os; from ml4l.ml.trainer import import_keras; print(import_keras().backend.backend(), os.environ['KERAS_BACKEND'])"
    assert _run(script).split()[-2:] == ["tensorflow", "tensorflow"]
