"""The history store: every request's outcome in SQLite (WAL), for stats and for dispatch to learn from.

A run (and a plan) is written when it starts (status ``running``, with its owner process) and
updated when it ends, each in one transaction. A run keeps its analysis and decision as JSON,
its plan, phase and attempt number when it is part of a plan, its tokens and LLM calls. A
harness killed in between leaves a ``running`` row whose owner is gone, which the next open
marks ``interrupted``. A damaged file is reported, never overwritten; an older file gains the
newer columns when opened.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Mapping
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
CREATE TABLE IF NOT EXISTS plans (
    plan_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    owner TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    phases INTEGER,
    stages INTEGER,
    partial INTEGER DEFAULT 0,
    wall_s REAL,
    estimated_s REAL,
    tokens_used INTEGER DEFAULT 0,
    report TEXT
);
"""
# Columns added to ``runs`` after its first release; an older file gains them when opened.
_LATER_COLUMNS = {
    "plan_id": "TEXT",
    "phase": "TEXT",
    "attempt": "INTEGER DEFAULT 1",
    "confidence": "REAL",
    "gate_passed": "INTEGER",
    "llm_calls": "INTEGER DEFAULT 0",
    "analysis": "TEXT",
    "decision": "TEXT",
    "template_version": "TEXT",
    "cause": "TEXT",
}

# Evidence fades: a run's weight halves every HALF_LIFE_DAYS, and runs of an earlier version of
# a scaffold count a quarter. So a scaffold that stopped being chosen is tried again once its
# failures are old or it has been changed: a little exploration, with no randomness in dispatch.
HALF_LIFE_DAYS = 14.0
STALE_VERSION_WEIGHT = 0.25
_DONE = ("succeeded", "failed", "timed_out", "oom_killed", "output_limit", "error", "gate_failed")
# Runs that filled a scaffold and ended: what dispatch learns from.
_FILLED_AND_DONE = f"template IS NOT NULL AND strategy = 'use_template' AND status IN ({', '.join('?' * len(_DONE))})"
_OUTCOMES = (
    "SELECT template, SUM(status = 'succeeded') AS ok, "  # noqa: S608
    "SUM(status != 'succeeded' AND COALESCE(cause, 'scaffold') = 'scaffold') AS bad FROM runs "
    f"WHERE {_FILLED_AND_DONE} GROUP BY template"
)
_EVIDENCE = f"SELECT template, status, started_at, template_version, cause FROM runs WHERE {_FILLED_AND_DONE}"  # noqa: S608
# Failures that are not the scaffold's: the user's input, or the machine. Dispatch ignores them.
NOT_THE_SCAFFOLD = ("input", "environment")


def success_factor(successes: float, failures: float) -> float:
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
                    self._migrate(db)
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

    def _migrate(self, db: sqlite3.Connection) -> None:
        have = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
        for column, kind in _LATER_COLUMNS.items():
            if column not in have:
                try:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # another process migrated it first
                        raise
        db.execute("CREATE INDEX IF NOT EXISTS runs_plan ON runs(plan_id)")

    def _mark_interrupted(self, db: sqlite3.Connection) -> None:
        for table, key in (("runs", "run_id"), ("plans", "plan_id")):
            rows = db.execute(f"SELECT {key}, owner FROM {table} WHERE status = 'running'").fetchall()  # noqa: S608
            for row in rows:
                if not owner_alive(row["owner"]):
                    db.execute(f"UPDATE {table} SET status = 'interrupted' WHERE {key} = ?", (row[key],))  # noqa: S608

    def plan_started(self, plan_id: str, request: str, **fields: Any) -> None:
        """Record a plan that is about to run."""
        self._insert("plans", {"plan_id": plan_id, "request": request, **fields})

    def plan_finished(self, plan_id: str, status: str, **fields: Any) -> None:
        """Record how a plan ended."""
        self._update("plans", "plan_id", plan_id, status, fields)

    def plans(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest plans, newest first, each with its phases' runs."""
        with self._connect() as db:
            plans = [
                dict(r)
                for r in db.execute(
                    "SELECT plan_id, started_at, finished_at, request, status, phases, stages, partial, wall_s, "
                    "estimated_s, tokens_used FROM plans ORDER BY started_at DESC, rowid DESC LIMIT ?",
                    (limit,),
                )
            ]
            for plan in plans:
                plan["runs"] = [
                    dict(r)
                    for r in db.execute(
                        "SELECT run_id, phase, attempt, status, template, duration_s FROM runs "
                        "WHERE plan_id = ? ORDER BY started_at, rowid",
                        (plan["plan_id"],),
                    )
                ]
        return plans

    def _insert(self, table: str, fields: dict[str, Any]) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        row = {"started_at": now, "owner": owner_token(), "status": "running", **fields}
        with self._connect() as db:
            db.execute(
                f"INSERT OR REPLACE INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",  # noqa: S608 - names are ours
                list(row.values()),
            )

    def _update(self, table: str, key: str, value: str, status: str, fields: dict[str, Any]) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        sets = ", ".join(f"{k} = ?" for k in ["finished_at", "status", *fields])
        with self._connect() as db:
            db.execute(
                f"UPDATE {table} SET {sets} WHERE {key} = ?",  # noqa: S608 - names are ours
                [now, status, *fields.values(), value],
            )

    def started(self, run_id: str, request: str, **fields: Any) -> None:
        """Record a run that is about to start."""
        self._insert("runs", {"run_id": run_id, "request": request, **fields})

    def finished(self, run_id: str, status: str, **fields: Any) -> None:
        """Record how a run ended."""
        self._update("runs", "run_id", run_id, status, fields)

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

    def evidence(
        self, versions: Mapping[str, str] | None = None, *, now: dt.datetime | None = None
    ) -> dict[str, tuple[float, float]]:
        """Successes and failures per scaffold as dispatch weighs them: recent runs of its current version most."""
        now = now or dt.datetime.now(dt.UTC)
        with self._connect() as db:
            rows = db.execute(_EVIDENCE, _DONE).fetchall()
        weighed: dict[str, list[float]] = {}
        for row in rows:
            if row["status"] != "succeeded" and row["cause"] in NOT_THE_SCAFFOLD:
                continue
            try:
                age = (now - dt.datetime.fromisoformat(row["started_at"])).total_seconds() / 86400
            except (TypeError, ValueError):
                age = 0.0
            weight = 0.5 ** (max(0.0, age) / HALF_LIFE_DAYS)
            current = (versions or {}).get(row["template"])
            if current and row["template_version"] and row["template_version"] != current:
                weight *= STALE_VERSION_WEIGHT
            tally = weighed.setdefault(row["template"], [0.0, 0.0])
            tally[0 if row["status"] == "succeeded" else 1] += weight
        return {name: (round(ok, 3), round(bad, 3)) for name, (ok, bad) in weighed.items()}

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
            plans = [dict(r) for r in db.execute("SELECT * FROM plans WHERE status != 'running'").fetchall()]
        return {
            "by_template": _group(rows, "template"),
            "by_workflow_type": _group(rows, "workflow_type"),
            "plans": _plan_stats(plans),
        }


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
                "failures_by_cause": dict(
                    sorted(Counter(r.get("cause") or "unknown" for r in items if r["status"] != "succeeded").items())
                ),
                "median_duration_s": round(statistics.median(durations), 3) if durations else None,
                "median_tokens": statistics.median([r["tokens_used"] or 0 for r in items]),
                "median_estimate_error": round(statistics.median(errors), 3) if errors else None,
            }
        )
    return out


def _plan_stats(plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not plans:
        return []
    walls = [p["wall_s"] for p in plans if p["wall_s"] is not None]
    errors = [abs(p["wall_s"] - p["estimated_s"]) / p["estimated_s"] for p in plans if p["wall_s"] and p["estimated_s"]]
    return [
        {
            "plans": len(plans),
            "success_rate": round(sum(p["status"] == "succeeded" for p in plans) / len(plans), 3),
            "partial": sum(bool(p["partial"]) for p in plans),
            "median_wall_s": round(statistics.median(walls), 3) if walls else None,
            "median_tokens": statistics.median([p["tokens_used"] or 0 for p in plans]),
            "median_estimate_error": round(statistics.median(errors), 3) if errors else None,
        }
    ]
