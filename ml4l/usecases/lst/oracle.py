"""The oracle of a synthetic lake: the LST truth without sensor noise, averaged over the pixels the join averaged.

:class:`~ml4l.usecases.lst.sample.SampleWriter` records in :attr:`~ml4l.lake.Lake.sample_record` which
:class:`~ml4l.synthetic.SyntheticEarth` made the raw MODIS files. For each (hour, cell) row of a
joined month, the oracle is the mean of that Earth's noise-free LST (``SyntheticEarth.lst`` with
no noise generator, at each pixel's overpass time) over exactly the pixels the join averaged into
the row: :func:`ml4l.join.day_moments` selects them (same files, QC filter, hours, cells and
threshold) and only the value averaged changes. What separates the observed row from its oracle
is the sensor noise alone, so no model can beat the oracle on average: it is the ceiling of the
``oracle_test_*`` metrics and of ``gap_closed``. A real lake has no sample record, and no oracle.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ml4l.config import JoinConfig
from ml4l.join import day_moments, merge_moments, month_days, read_joined
from ml4l.lake import Lake
from ml4l.synthetic import SyntheticEarth
from ml4l.types import FloatArray, Month
from ml4l.usecases.lst.sample import hours_since_epoch

ORACLE = "oracle"
"""Column of the oracle LST (K)."""


def synthetic_earth(lake: Lake) -> SyntheticEarth | None:
    """The synthetic Earth that wrote the lake's MODIS files, or ``None`` for a lake of real data."""
    if not lake.fs.exists(lake.sample_record):
        return None
    with lake.fs.open(lake.sample_record) as source:
        return SyntheticEarth(int(json.load(source)["seed"]))


def truth_at(earth: SyntheticEarth, lat: FloatArray, lon: FloatArray, day: str) -> FloatArray:
    """Noise-free LST (K) at pixels seen on MODIS ``day``, at their overpass time, as the sample writer drew it."""
    start = pd.Timestamp(day)
    utc, _ = earth.overpass(lat, lon, float(hours_since_epoch(start)[0]))
    return earth.lst(lat, lon, utc, start.month, None)


def month_oracle(lake: Lake, month: Month, earth: SyntheticEarth, config: JoinConfig) -> pd.DataFrame:
    """``time, cell, oracle`` for every row of the joined ``month``.

    Raises
    ------
    ValueError
        When the rows or their pixel counts differ from the joined month's: ``config`` is
        not the one the month was joined with, or the raw MODIS files changed since.
    """
    parts = []
    for day in month_days(lake, month):
        _, moments = day_moments(lake, day, month, config, lambda lat, lon, seen: truth_at(earth, lat, lon, seen))
        if moments is not None:
            parts.append(moments)
    merged = merge_moments(parts)
    joined = read_joined(lake, month)
    same_rows = len(merged) == len(joined) and bool(
        (merged["time"].to_numpy() == joined["time"].to_numpy()).all()
        and (merged["cell"].to_numpy() == joined["cell"].to_numpy()).all()
        and (merged["lst_count"].to_numpy() == joined["lst_count"].to_numpy()).all()
    )
    if not same_rows:
        raise ValueError(f"the oracle of {month} does not average the joined month's pixels: was it joined with {config}?")
    oracle = merged["lst_sum"].to_numpy(np.float64) / merged["lst_count"].to_numpy(np.float64)
    if not np.isfinite(oracle).all():
        raise ValueError(f"the oracle of {month} is not finite in {int((~np.isfinite(oracle)).sum())} rows")
    return pd.DataFrame({"time": merged["time"].to_numpy(), "cell": joined["cell"].to_numpy(), ORACLE: oracle})


def oracle_rows(lake: Lake, months: list[Month], config: JoinConfig) -> pd.DataFrame | None:
    """The oracle of every row of the joined ``months``; ``None`` when the lake holds real data."""
    earth = synthetic_earth(lake)
    if earth is None:
        return None
    return pd.concat([month_oracle(lake, month, earth, config) for month in months], ignore_index=True)
