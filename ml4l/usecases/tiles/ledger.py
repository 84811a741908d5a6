"""The per-tile ledger: one row per tile of the GeoJSON, its state, the reason it failed and its attempts.

SQLite (WAL, one connection per call, so Dask threads and Prefect task runs may share it) under
``tiles/<name>/ledger.sqlite``. States: ``pending`` (registered, not tried yet), ``done`` (its
checked arrays are committed as a part), ``failed`` (``reason`` says why; ``transient`` when a
re-download may fix it: a missing or unreadable file, not data that failed its check).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PENDING, DONE, FAILED = "pending", "done", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tiles (
    tile_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    reason TEXT,
    transient INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


@dataclass(frozen=True)
class Ledger:
    """The ledger at ``path`` (a local file)."""

    path: str

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=60.0, isolation_level=None)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=60000")
            connection.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses no committed transaction
            connection.execute(_SCHEMA)
            yield connection

    def register(self, tiles: Sequence[str]) -> None:
        """Add the tiles not in the ledger yet as pending, at their GeoJSON position."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO tiles (tile_id, position, state) VALUES (?, ?, 'pending')",
                [(tile, i) for i, tile in enumerate(tiles)],
            )
            db.execute("COMMIT")

    def table(self) -> pd.DataFrame:
        """Every tile, in GeoJSON order: ``tile_id, position, state, reason, transient, attempts, updated_at``."""
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM tiles ORDER BY position", db)

    def tiles_in(self, state: str) -> list[str]:
        """The tiles in ``state``, in GeoJSON order."""
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT tile_id FROM tiles WHERE state = ? ORDER BY position", (state,))]

    def attempt(self, tiles: Sequence[str]) -> None:
        """Count one more attempt of each tile."""
        with self._connect() as db:
            db.executemany("UPDATE tiles SET attempts = attempts + 1 WHERE tile_id = ?", [(t,) for t in tiles])

    def commit(self, done: Sequence[str] = (), failed: Mapping[str, tuple[str, bool]] | None = None) -> None:
        """In one transaction: ``done`` tiles done, ``failed`` tiles failed with ``(reason, transient)``."""
        rows: list[tuple[str, str | None, int, str]] = [(DONE, None, 0, t) for t in done]
        rows += [(FAILED, r, int(tr), t) for t, (r, tr) in (failed or {}).items()]
        self._update(rows)

    def reset(self, tiles: Sequence[str]) -> None:
        """Set ``tiles`` back to pending (their committed part is gone)."""
        self._update([(PENDING, None, 0, t) for t in tiles])

    def _update(self, rows: Sequence[tuple[str, str | None, int, str]]) -> None:
        if not rows:
            return
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            changed = 0
            for row in rows:
                changed += db.execute(
                    "UPDATE tiles SET state = ?, reason = ?, transient = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                    "WHERE tile_id = ?",
                    row,
                ).rowcount
            if changed != len(rows):
                db.execute("ROLLBACK")
                raise KeyError(f"{len(rows) - changed} of {len(rows)} tiles are not in the ledger {self.path}")
            db.execute("COMMIT")

    def counts(self) -> dict[str, int]:
        """Tiles per state."""
        with self._connect() as db:
            found = dict(db.execute("SELECT state, COUNT(*) FROM tiles GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in (PENDING, DONE, FAILED)}
