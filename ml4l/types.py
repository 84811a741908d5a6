"""Type aliases shared across ml4l."""

from __future__ import annotations

import os
from typing import Union

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
PathLike = Union[str, "os.PathLike[str]"]
Month = str
"""A calendar month as ``YYYY-MM``."""
