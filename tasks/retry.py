"""Retry policy shared by I/O tasks: back off exponentially with jitter, never retry bad input."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from ml4l.errors import InputError

IO_RETRIES = 3
IO_RETRY_DELAYS = exponential_backoff(backoff_factor=2)
IO_RETRY_JITTER = 0.5


def transient_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Retry unless the failure is an :class:`~ml4l.errors.InputError`: bad data fails the same way again."""
    try:
        state.result()
    except InputError:
        return False
    except Exception:
        return True
    return True


IO_TASK_OPTIONS: dict[str, Any] = {
    "retries": IO_RETRIES,
    "retry_delay_seconds": IO_RETRY_DELAYS(IO_RETRIES),
    "retry_jitter_factor": IO_RETRY_JITTER,
    "retry_condition_fn": transient_failure,
}
