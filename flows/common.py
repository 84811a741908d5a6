"""Helpers shared by flows."""

from __future__ import annotations

from typing import Annotated

from prefect.futures import PrefectFuture, wait
from prefect.states import State
from pydantic import Field

from ml4l.config import check_month, load_recipe
from ml4l.types import Month


MonthParameter = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="a month, YYYY-MM", examples=["2019-01"])]
"""A flow parameter holding a month; the schema makes the UI and the API refuse anything else."""

NameParameter = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="a name inside the lake: letters, digits, _ . -")]
"""A flow parameter naming something under the lake (an ML-ready set, a model): no separator, so no path can leave the lake."""


def months_of(recipe: str, months: list[str] | None) -> list[Month]:
    """The requested months, checked against ``YYYY-MM``; the recipe's whole period when ``None``."""
    if months is None:
        return load_recipe(recipe).period.months
    return [check_month(m) for m in months]


def settle(futures: dict[str, PrefectFuture]) -> dict[str, State]:
    """Wait for every future and raise once, naming each failed key, after all have finished."""
    wait(list(futures.values()))
    states = {key: future.state for key, future in futures.items()}
    failed = {key: state for key, state in states.items() if not state.is_completed()}
    if failed:
        reasons = "; ".join(f"{key}: {state.message}" for key, state in failed.items())
        raise RuntimeError(f"{len(failed)} of {len(futures)} failed: {reasons}")
    return states
