"""Helpers shared by flows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture, wait
from prefect.states import State
from pydantic import Field

from ml4l import quality
from ml4l.config import check_month, load_recipe
from ml4l.lake import Lake
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


_DOCS_OWNER: ContextVar[bool] = ContextVar("ml4l_docs_owner", default=False)


@contextmanager
def data_docs_refreshed(lake: Lake) -> Iterator[None]:
    """Rebuild the Data Docs index once, when the outermost flow of this process ends (failed or not).

    Validations render only their own page; the index, whose cost grows with every stored
    result, is rebuilt here, so a monthly run with its ingest and join subflows rebuilds it once.
    """
    if _DOCS_OWNER.get():
        yield
        return
    token = _DOCS_OWNER.set(True)
    try:
        yield
    finally:
        _DOCS_OWNER.reset(token)
        index = quality.refresh_docs(lake)
        if index:
            get_run_logger().info("Data Docs: %s", index)


def refresh_docs_hook(flow: Any, flow_run: Any, state: State) -> None:
    """Flow hook (``**DOCS_HOOKS``): rebuild the Data Docs index when the flow ends, unless an enclosing flow will."""
    if _DOCS_OWNER.get():
        return
    from blocks.lake import resolve_lake

    lake = resolve_lake(flow_run.parameters.get("lake_root"), flow_run.parameters.get("lake_block"))
    index = quality.refresh_docs(lake)
    if index:
        print(f"Data Docs: {index}")


DOCS_HOOKS: dict[str, Any] = {"on_completion": [refresh_docs_hook], "on_failure": [refresh_docs_hook]}
"""``@flow(..., **DOCS_HOOKS)``: a flow that validates rebuilds the Data Docs index once, when it ends."""


@contextmanager
def one_cluster(runner: Any) -> Iterator[Any]:
    """``runner`` for every subflow of a flow run, with the Dask cluster it would create started once here.

    A ``DaskTaskRunner`` that makes its own cluster makes one per flow it runs; the runner
    yielded instead connects to this one cluster by address. Other runners are yielded as they are.
    """
    from prefect_dask import DaskTaskRunner

    if not isinstance(runner, DaskTaskRunner) or runner.address:
        yield runner
        return
    import distributed

    make = runner.resolved_cluster_class or runner.cluster_class or distributed.LocalCluster
    with make(**runner.cluster_kwargs) as cluster:
        if runner.adapt_kwargs:
            cluster.adapt(**runner.adapt_kwargs)
        get_run_logger().info("one Dask cluster for this flow run: %s", cluster.scheduler_address)
        yield DaskTaskRunner(address=cluster.scheduler_address, client_kwargs=runner.client_kwargs)
