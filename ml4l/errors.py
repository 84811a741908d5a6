"""Errors raised on bad input. Each names the offending file and the problem."""

from __future__ import annotations


class InputError(ValueError):
    """An input file is unreadable, incomplete or inconsistent with the store.

    It is a permanent error: retrying the same input fails the same way.
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")
