"""Retention: what may be pruned from the runs folder, and the default policy applied after each run.

The policy (``HARNESS_RUNS_MAX_AGE_DAYS``, ``HARNESS_RUNS_MAX_BYTES``) removes folders older than
the age, then the oldest until the rest fit in the size. Never removed, whatever the policy:

* runs a generated script awaiting review lists (``generated/<id>/runs.jsonl``: a reviewer reads them);
* runs the history recorded in the last :data:`RECENT_HOURS` hours, or still ``running``;
* folders with no result yet that changed in the last :data:`RECENT_HOURS` hours: a run or a
  plan (``plan-*`` with no ``plan_report.json``) still in progress, in this process or another;
* the run that has just finished (the caller names it).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError
from harness.runs.store import PruneOutcome, RunStore
from harness.settings import Settings

__all__ = ["RECENT_HOURS", "RetentionPolicy", "apply_retention", "protected_runs"]

RECENT_HOURS = 12.0
log = logging.getLogger(__name__)


class RetentionPolicy(BaseModel):
    """How much the runs folder keeps: by age and by total size (None: no limit of that kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age_days: float | None
    max_bytes: int | None

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        """The policy the settings ask for (0 turns either limit off)."""
        return cls(
            max_age_days=settings.runs_max_age_days or None,
            max_bytes=settings.runs_max_bytes or None,
        )

    def describe(self) -> str:
        """The policy in a few words, for the CLI."""
        from harness.runs.store import human_size

        age = f"older than {self.max_age_days:g} days" if self.max_age_days else "no age limit"
        size = f"beyond {human_size(self.max_bytes)} in all" if self.max_bytes else "no size limit"
        return f"{age}, {size}"

    def prune(
        self, store: RunStore, protected: dict[str, str], *, dry_run: bool = False, now: float | None = None
    ) -> PruneOutcome:
        """Apply this policy to ``store``, sparing ``protected``."""
        return store.prune(
            older_than_s=self.max_age_days * 86400 if self.max_age_days else None,
            max_bytes=self.max_bytes,
            protected=protected,
            dry_run=dry_run,
            now=now,
        )


def protected_runs(
    settings: Settings, store: RunStore | None = None, *, now: float | None = None, recent_hours: float = RECENT_HOURS
) -> dict[str, str]:
    """Folders that something still points at: id -> why they stay."""
    from harness.review.store import GeneratedStore

    now = time.time() if now is None else now
    store = store or RunStore(settings.runs_dir)
    keep: dict[str, str] = {}
    for entry in store.list():
        if not entry.finished and now - entry.mtime < recent_hours * 3600:
            keep[entry.id] = f"{entry.kind} in progress"
    for run_id in _recent_history(settings, now - recent_hours * 3600):
        keep.setdefault(run_id, f"recent history (last {recent_hours:g} hours or still running)")
    for record in GeneratedStore.from_settings(settings).all():
        if record.status == "pending_review":
            for run_id in record.runs:
                keep.setdefault(run_id, f"generated script {record.id} awaits review")
    return keep


def apply_retention(settings: Settings, *, keep: Iterable[str] = ()) -> PruneOutcome | None:
    """The default policy, after a run: prunes oldest first, never fails the run (None when skipped)."""
    policy = RetentionPolicy.of(settings)
    if policy.max_age_days is None and policy.max_bytes is None:
        return None
    store = RunStore(settings.runs_dir)
    try:
        with store.locked() as mine:
            if not mine:  # another harness is pruning right now: it will do
                return None
            protected = protected_runs(settings, store)
            protected.update({run_id: "the run that just finished" for run_id in keep})
            return policy.prune(store, protected)
    except (OSError, sqlite3.Error, HarnessError, ValueError) as exc:
        log.warning("retention skipped: %s", exc)
        return None


def _recent_history(settings: Settings, since: float) -> list[str]:
    """Run ids the history started after ``since`` (epoch seconds) or still holds as running."""
    path = settings.data_dir / "history.sqlite3"
    if not path.is_file():
        return []
    cutoff = dt.datetime.fromtimestamp(since, dt.UTC).isoformat(timespec="seconds")
    # Read-only, and only the three columns every version of the file has: retention must not
    # migrate or lock the history another harness is writing.
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT run_id FROM runs WHERE status = 'running' OR started_at >= ?", (cutoff,)).fetchall()
    finally:
        db.close()
    return [str(row[0]) for row in rows]
