"""The runs folder: one folder per run (script, checks, events, result, report, outputs), and its retention."""

from __future__ import annotations

from harness.runs.retention import RetentionPolicy, apply_retention, protected_runs
from harness.runs.store import (
    MAX_LOG_BYTES,
    MAX_LOG_EVENTS,
    EventLog,
    PruneOutcome,
    RunEntry,
    RunFolder,
    RunPrunedError,
    RunStore,
    human_size,
)

__all__ = [
    "MAX_LOG_BYTES",
    "MAX_LOG_EVENTS",
    "EventLog",
    "PruneOutcome",
    "RetentionPolicy",
    "RunEntry",
    "RunFolder",
    "RunPrunedError",
    "RunStore",
    "apply_retention",
    "human_size",
    "protected_runs",
]
