"""The error every GRIB reader raises: the file, the message, its byte offset and the key at fault."""

from __future__ import annotations

from dataclasses import dataclass

from ml4l.errors import InputError


class GribError(InputError):
    """A GRIB message that cannot be read exactly.

    The text reads ``<file>: message <n> at byte <offset>: <key>: <problem>``; the
    parts are kept as attributes for callers that need them.
    """

    def __init__(self, source: str, number: int, offset: int, key: str, problem: str) -> None:
        self.number = number
        self.offset = offset
        self.key = key
        super().__init__(source, f"message {number} at byte {offset}: {key}: {problem}")


@dataclass(frozen=True)
class Where:
    """Which message of which file is being read: the context of every :class:`GribError`."""

    source: str
    number: int
    offset: int

    def error(self, key: str, problem: str) -> GribError:
        return GribError(self.source, self.number, self.offset, key, problem)
