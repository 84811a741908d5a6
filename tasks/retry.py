"""Retry policy shared by I/O tasks: only transient faults are retried, with exponential backoff and jitter.

Transient faults are first retried at the failing I/O call (:class:`ml4l.lake.RetryingFileSystem`);
a task is re-run only when one outlasted that bound. Bad input, bad configuration, bugs and a full
disk are never retried: they fail the same way again.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from ml4l.lake import is_transient

IO_RETRIES = 2
IO_RETRY_DELAYS = exponential_backoff(backoff_factor=2)
IO_RETRY_JITTER = 0.5


def transient_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only when the task failed with a transient fault (:func:`ml4l.lake.is_transient`)."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


IO_TASK_OPTIONS: dict[str, Any] = {
    "retries": IO_RETRIES,
    "retry_delay_seconds": IO_RETRY_DELAYS(IO_RETRIES),
    "retry_jitter_factor": IO_RETRY_JITTER,
    "retry_condition_fn": transient_failure,
}
