"""The history store: every request's outcome in SQLite (WAL), for stats and for dispatch to learn from.

A run is written when it starts (status ``running``, with its owner process) and updated when
it ends, each in one transaction; a harness killed in between leaves a ``running`` row whose
owner is gone, which the next open marks ``interrupted``. A damaged file is reported, never
overwritten.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.execution.docker import owner_alive, owner_token

__all__ = ["HistoryStore", "success_factor"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    owner TEXT NOT NULL,
    request TEXT NOT NULL,
    workflow_type TEXT,
    complexity TEXT,
    strategy TEXT,
    template TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    duration_s REAL,
    estimated_duration_s REAL,
    tokens_used INTEGER DEFAULT 0,
    estimated_tokens INTEGER DEFAULT 0,
    generated_id TEXT
);
CREATE INDEX IF NOT EXISTS runs_template ON runs(template);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
"""
_DONE = ("succeeded", "failed", "timed_out", "oom_killed", "output_limit", "error", "gate_failed")
_OUTCOMES = (
    "SELECT template, SUM(status = 'succeeded') AS ok, SUM(status != 'succeeded') AS bad FROM runs "
    "WHERE template IS NOT NULL AND strategy = 'use_template' AND status IN (?, ?, ?, ?, ?, ?, ?) GROUP BY template"
)


def success_factor(successes: int, failures: int) -> float:
    """How history scales a scaffold's match confidence: 1.0 with no history, lower as it keeps failing.

    The posterior mean of a Beta(2, 2) prior (so a single failure is not damning), relative to
    one half, capped at 1.2: four straight failures take a 0.83 match below the default threshold.
    """
    mean = (successes + 2) / (successes + failures + 4)
    return min(1.2, mean / 0.5)


class HistoryStore:
    """Reads and writes ``history.sqlite3`` in the data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + 15
        while True:
            try:
                with self._connect() as db:
                    # WAL is a property of the file: set once here, kept by every later connection.
                    db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(_SCHEMA)
                    self._mark_interrupted(db)
                return
            except sqlite3.OperationalError as exc:
                # Another process or thread is opening the same file: wait for it, it is not damage.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise UserError(
                        f"the history file {path} cannot be opened ({exc})", hint="another harness may hold it"
                    ) from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                raise UserError(
                    f"the history file {path} is damaged ({exc})",
                    hint="move it aside (it is not overwritten); harness starts a new one",
                ) from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    def _mark_interrupted(self, db: sqlite3.Connection) -> None:
        for row in db.execute("SELECT run_id, owner FROM runs WHERE status = 'running'").fetchall():
            if not owner_alive(row["owner"]):
                db.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", (row["run_id"],))

    def started(self, run_id: str, request: str, **fields: Any) -> None:
        """Record a run that is about to start."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        columns = ["run_id", "started_at", "owner", "request", "status", *fields]
        values = [run_id, now, owner_token(), request, "running", *fields.values()]
        with self._connect() as db:
            db.execute(
                f"INSERT OR REPLACE INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(values))})",  # noqa: S608 - column names are ours
                values,
            )

    def finished(self, run_id: str, status: str, **fields: Any) -> None:
        """Record how a run ended."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        sets = ", ".join(f"{k} = ?" for k in ["finished_at", "status", *fields])
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [now, status, *fields.values(), run_id])  # noqa: S608

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    def outcomes(self) -> dict[str, tuple[int, int]]:
        """Successes and failures per scaffold, over finished runs that filled it (not LLM-made ones)."""
        with self._connect() as db:
            rows = db.execute(_OUTCOMES, _DONE).fetchall()
        return {r["template"]: (int(r["ok"]), int(r["bad"])) for r in rows}

    def medians(self, *, template: str | None = None, strategy: str | None = None) -> tuple[int, float, int]:
        """Finished runs matching ``template``/``strategy``: their count, median seconds and median tokens."""
        clauses, values = ["status != 'running'", "duration_s IS NOT NULL"], []
        for column, value in (("template", template), ("strategy", strategy)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        with self._connect() as db:
            rows = db.execute(
                f"SELECT duration_s, tokens_used FROM runs WHERE {' AND '.join(clauses)}",  # noqa: S608 - fixed columns
                values,
            ).fetchall()
        if not rows:
            return 0, 0.0, 0
        return (
            len(rows),
            float(statistics.median(r["duration_s"] for r in rows)),
            int(statistics.median(r["tokens_used"] or 0 for r in rows)),
        )

    def stats(self) -> dict[str, list[dict[str, Any]]]:
        """Per scaffold and per workflow type: runs, success rate, median duration and tokens, estimate error."""
        with self._connect() as db:
            rows = [dict(r) for r in db.execute("SELECT * FROM runs WHERE status != 'running'").fetchall()]
        return {"by_template": _group(rows, "template"), "by_workflow_type": _group(rows, "workflow_type")}


def _group(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key] or "(none)", []).append(row)
    out = []
    for name, items in sorted(groups.items()):
        durations = [r["duration_s"] for r in items if r["duration_s"] is not None]
        errors = [
            abs(r["duration_s"] - r["estimated_duration_s"]) / r["estimated_duration_s"]
            for r in items
            if r["duration_s"] is not None and r["estimated_duration_s"]
        ]
        out.append(
            {
                key: name,
                "runs": len(items),
                "success_rate": round(sum(r["status"] == "succeeded" for r in items) / len(items), 3),
                "median_duration_s": round(statistics.median(durations), 3) if durations else None,
                "median_tokens": statistics.median([r["tokens_used"] or 0 for r in items]),
                "median_estimate_error": round(statistics.median(errors), 3) if errors else None,
            }
        )
    return out
