"""The use cases the platform runs: one entry each, ``name -> "module:demo flow"``.

Adding a use case means adding its folder under ``ml4l/usecases/``, its flows, and one line here.
A use case's demo flow takes ``lake_root`` and returns a dict with at least ``metrics`` (the
contract names of ``ml4l.ml.metrics``) and ``outputs`` (name -> path in the lake).
"""

from __future__ import annotations

import importlib
from typing import Any

USECASES: dict[str, str] = {
    "lst": "flows.demo:demo_flow",
    "gapfill": "flows.gapfill:gapfill_demo_flow",
    "downscale": "flows.downscale:downscale_demo_flow",
    "tiles": "flows.tiles:tiles_demo_flow",
    "assimilation": "flows.assimilation:assimilation_demo_flow",
}


def register(name: str, target: str) -> None:
    """Add (or replace) a use case: ``target`` is ``"module:flow"``."""
    if ":" not in target:
        raise ValueError(f"use case target must be 'module:flow', got {target!r}")
    USECASES[name] = target


def load(name: str) -> Any:
    """The demo flow of use case ``name``."""
    if name not in USECASES:
        raise KeyError(f"unknown use case {name!r}; known: {', '.join(sorted(USECASES))}")
    module, attribute = USECASES[name].split(":")
    return getattr(importlib.import_module(module), attribute)
