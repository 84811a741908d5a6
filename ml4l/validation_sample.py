"""Validate a large table on a seeded sample plus its witness rows, with the whole table's pass or fail.

A Great Expectations suite run on millions of rows costs as much as the join that
made them. Every expectation of the suites here is decided by a few rows of the
table (its *witnesses*), found with one vectorised pass per column:

- a range (``expect_column_values_to_be_between``): the rows of the column's minimum and maximum;
- a column pair (``..._a_to_be_greater_than_b``): the row where ``A - B`` is smallest
  (its sign is exact in IEEE arithmetic, so ``A >= B`` everywhere iff there);
- a set (``..._to_be_in_set``, ``..._distinct_values_to_contain_set``): the first row of each distinct value;
- a forbidden set or null check: the rows that hold those values (up to :data:`EXAMPLES`);
- uniqueness (``expect_compound_columns_to_be_unique``): a duplicated key's first two rows
  (and up to :data:`EXAMPLES` more rows of duplicated keys);
- types, column lists and ``row count >= 1``: kept by any non-empty subset.

The suite then runs on those rows plus a seeded uniform sample (for the per-row figures
of the Data Docs), so each expectation passes or fails as on the whole table, at a
cost flat in its size. Unexpected percentages are of the rows validated. An
expectation that a subset cannot decide (``mostly``, a ``row_condition``, another
row count, a type not listed) makes :func:`witness_rows` return ``None``: the whole
table is validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_ROWS = 20_000
"""Uniformly sampled rows validated beside the witnesses."""
EXAMPLES = 1_000
"""At most this many rows of each kind of failure are kept (enough to fail, and to show)."""

_SUBSET_INVARIANT = frozenset(
    {
        "expect_table_columns_to_match_ordered_list",
        "expect_table_columns_to_match_set",
        "expect_column_to_exist",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
    }
)


def _kwarg(kwargs: dict[str, Any], name: str, parameters: Mapping[str, Any]) -> Any:
    value = kwargs.get(name)
    if isinstance(value, dict) and "$PARAMETER" in value:
        return parameters.get(value["$PARAMETER"])
    return value


def _numeric(values: Any) -> np.ndarray | None:
    array = np.asarray(values)
    return array if array.dtype.kind in "fiub" else None


def _extremes(values: np.ndarray) -> list[int]:
    if not values.size:
        return []
    low, high = int(np.argmin(values)), int(np.argmax(values))  # the first NaN, if any: then again without them
    if values.dtype.kind == "f" and (np.isnan(values[low]) or np.isnan(values[high])):
        if np.isnan(values).all():
            return []
        low, high = int(np.nanargmin(values)), int(np.nanargmax(values))
    return [low, high]


def first_of_each_value(values: Any) -> np.ndarray:
    """The first row of each distinct value (categoricals by their codes)."""
    if isinstance(values, pd.Categorical):
        values = values.codes
    elif isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.codes
    array = np.asarray(values)
    if array.dtype.kind in "iub" and array.size:
        low, high = int(array.min()), int(array.max())
        if high - low < 16:  # a few codes: one comparison pass each beats hashing every row
            firsts = ((v, int(np.argmax(array == v))) for v in range(low, high + 1))
            return np.asarray([i for v, i in firsts if array[i] == v], dtype=np.int64)  # argmax is 0 where v is absent
    return pd.Series(array).drop_duplicates(keep="first").index.to_numpy()


def duplicated_rows(keys: list[Any]) -> np.ndarray:
    """Rows whose key (the tuple of ``keys``' values) is duplicated: a first pair of them, then up to :data:`EXAMPLES` more.

    A table sorted by its key (a joined month) is checked by comparing neighbours; another by hashing.
    """
    arrays = [np.asarray(k) for k in keys]
    arrays = [a.view(np.int64) if a.dtype.kind == "M" else a for a in arrays]
    n = arrays[0].size
    if n < 2:
        return np.empty(0, dtype=np.int64)
    before, same = np.zeros(n - 1, dtype=bool), np.ones(n - 1, dtype=bool)
    for a in arrays:
        before |= same & (a[:-1] < a[1:])
        same &= a[:-1] == a[1:]
    if (before | same).all():  # sorted: a duplicate sits next to its twin
        later = np.flatnonzero(same) + 1
        return np.unique(np.concatenate([later[:1] - 1, later[:EXAMPLES]]))
    frame = pd.DataFrame({str(i): a for i, a in enumerate(arrays)})
    twice = np.flatnonzero(frame.duplicated(keep=False).to_numpy())
    if twice.size == 0:
        return twice
    repeat = int(np.flatnonzero(frame.duplicated(keep="first").to_numpy())[0])
    twin = int(np.flatnonzero((frame == frame.iloc[repeat]).all(axis=1).to_numpy())[0])
    return np.unique(np.concatenate([[twin, repeat], twice[:EXAMPLES]]))


def witness_rows(
    columns: Mapping[str, Any],
    rows: int,
    suite: dict[str, Any],
    parameters: Mapping[str, Any] | None = None,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> np.ndarray | None:
    """Sorted rows on which ``suite`` passes or fails exactly as on all ``rows`` rows of ``columns``; ``None`` when no subset can.

    ``columns`` maps names to arrays of ``rows`` values (numpy, pandas, or ``np.broadcast_to``
    views of a constant). ``None`` too when the table is not larger than ``sample_rows``.
    """
    parameters = parameters or {}
    if rows <= sample_rows:
        return None
    rng = np.random.default_rng(seed)
    picked = [rng.choice(rows, size=sample_rows, replace=False)]
    for expectation in suite["expectations"]:
        kind, kwargs = expectation["type"], expectation["kwargs"]
        if "row_condition" in kwargs or kwargs.get("mostly", 1.0) < 1.0:
            return None
        if kind in _SUBSET_INVARIANT:
            continue
        if kind == "expect_table_row_count_to_be_between":
            low, high = _kwarg(kwargs, "min_value", parameters), _kwarg(kwargs, "max_value", parameters)
            if (low or 0) > 1 or high is not None:  # a subset has fewer rows: only "not empty" holds for both
                return None
            continue
        if kind == "expect_column_values_to_be_between":
            values = _numeric(columns[kwargs["column"]])
            if values is None:
                return None
            picked.append(np.asarray(_extremes(values), dtype=np.int64))
        elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
            a, b = _numeric(columns[kwargs["column_A"]]), _numeric(columns[kwargs["column_B"]])
            if a is None or b is None:
                return None
            picked.append(np.asarray(_extremes(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))[:1], dtype=np.int64))
        elif kind in (
            "expect_column_values_to_be_in_set",
            "expect_column_distinct_values_to_contain_set",
            "expect_column_distinct_values_to_be_in_set",
            "expect_column_distinct_values_to_equal_set",
        ):
            picked.append(first_of_each_value(columns[kwargs["column"]]))
        elif kind == "expect_column_values_to_not_be_in_set":
            values = columns[kwargs["column"]]
            forbidden = _kwarg(kwargs, "value_set", parameters)
            values = np.asarray(values)
            found = np.isin(values, list(forbidden)) if values.dtype.kind in "fiub" else pd.Series(values).isin(list(forbidden)).to_numpy()
            picked.append(np.flatnonzero(found)[:EXAMPLES])
        elif kind == "expect_column_values_to_not_be_null":
            picked.append(np.flatnonzero(pd.isna(np.asarray(columns[kwargs["column"]])))[:EXAMPLES])
        elif kind == "expect_compound_columns_to_be_unique":
            picked.append(duplicated_rows([columns[name] for name in kwargs["column_list"]]))
        elif kind == "expect_column_values_to_be_unique":
            picked.append(duplicated_rows([columns[kwargs["column"]]]))
        else:
            return None
    return np.unique(np.concatenate(picked).astype(np.int64))


def sample_table(
    table: pd.DataFrame, suite: dict[str, Any], parameters: Mapping[str, Any] | None = None, sample_rows: int = SAMPLE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """``table``'s witness rows and seeded sample (:func:`witness_rows`), or ``table`` itself when no subset decides ``suite``."""
    rows = witness_rows(table, len(table), suite, parameters, sample_rows, seed)
    return table if rows is None else table.iloc[rows].reset_index(drop=True)
