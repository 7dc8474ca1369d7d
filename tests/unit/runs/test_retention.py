"""Retention: the default policy after each run, and what it never removes."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from harness.history.store import HistoryStore
from harness.review.store import GeneratedRecord, GeneratedStore
from harness.runs import RetentionPolicy, RunStore, apply_retention, protected_runs
from harness.settings import Settings

OLD = 100  # days: past the default 30


def make_run(store: RunStore, run_id: str, *, age_days: float, size: int = 1000, finished: bool = True) -> None:
    folder = store.create(run_id)
    folder.write_text("script.py", "x" * size)
    if finished:
        folder.write_text("result.json", json.dumps({"status": "succeeded"}))
    stamp = time.time() - age_days * 86400
    for path in [*folder.path.iterdir(), folder.path]:
        os.utime(path, (stamp, stamp))


def make_plan(root: Path, plan_id: str, *, age_days: float, finished: bool) -> None:
    folder = root / plan_id / "phase-a"
    folder.mkdir(parents=True)
    (folder / "out.csv").write_text("a,b\n")
    if finished:
        (root / plan_id / "plan_report.json").write_text(json.dumps({"status": "succeeded"}))
    stamp = time.time() - age_days * 86400
    for path in (folder / "out.csv", folder, root / plan_id, *(root / plan_id).iterdir()):
        os.utime(path, (stamp, stamp))


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


def with_env(**env: str) -> Settings:
    """Settings from this test's environment (its own data dir) plus ``env``."""
    return Settings.from_env({**os.environ, **env})


def test_the_defaults_are_thirty_days_and_two_gib(settings: Settings) -> None:
    policy = RetentionPolicy.of(settings)
    assert (policy.max_age_days, policy.max_bytes) == (30, 2 * 1024**3)
    off = RetentionPolicy.of(with_env(HARNESS_RUNS_MAX_AGE_DAYS="0", HARNESS_RUNS_MAX_BYTES="0"))
    assert (off.max_age_days, off.max_bytes) == (None, None)
    assert with_env(HARNESS_RUNS_MAX_BYTES="500m").runs_max_bytes == 500 * 1024**2


def test_a_pending_reviews_runs_are_protected_and_a_decided_ones_are_not(settings: Settings) -> None:
    store = RunStore(settings.runs_dir)
    make_run(store, "aaaaaaaaaaaa", age_days=OLD)
    make_run(store, "bbbbbbbbbbbb", age_days=OLD)
    generated = GeneratedStore.from_settings(settings)
    for record_id, run_id, status in (
        ("g-000000000001", "aaaaaaaaaaaa", "pending_review"),
        ("g-000000000002", "bbbbbbbbbbbb", "rejected"),
    ):
        generated.save(
            GeneratedRecord(
                id=record_id,
                created_at="2026-01-01T00:00:00+00:00",
                request="r",
                strategy="generate_custom",
                model="m",
            ),
            script="print(1)\n",
        )
        generated.record_run(record_id, run_id, "succeeded")
        if status == "rejected":  # trust changes only through the store's transitions
            generated.transition(record_id, "rejected", reviewer="ada")
    outcome = apply_retention(settings)
    assert outcome is not None
    assert [e.id for e in outcome.removed] == ["bbbbbbbbbbbb"]
    assert outcome.protected == {"aaaaaaaaaaaa": "generated script g-000000000001 awaits review"}


def test_a_plan_in_progress_is_protected_a_finished_or_abandoned_one_is_not(settings: Settings) -> None:
    root = settings.runs_dir
    make_plan(root, "plan-aaaaaaaaaaaa", age_days=0.01, finished=False)  # running now
    make_plan(root, "plan-bbbbbbbbbbbb", age_days=OLD, finished=True)
    make_plan(root, "plan-cccccccccccc", age_days=OLD, finished=False)  # its harness died long ago
    outcome = apply_retention(settings)
    assert outcome is not None
    assert sorted(e.id for e in outcome.removed) == ["plan-bbbbbbbbbbbb", "plan-cccccccccccc"]
    assert outcome.protected == {"plan-aaaaaaaaaaaa": "plan in progress"}
    # and by size: the plan in progress stays even when it alone is over the limit
    small = with_env(HARNESS_RUNS_MAX_BYTES="1")
    assert apply_retention(small) is not None and (root / "plan-aaaaaaaaaaaa").is_dir()


def test_recent_and_running_history_rows_are_protected(settings: Settings) -> None:
    store = RunStore(settings.runs_dir)
    history = HistoryStore(settings.data_dir / "history.sqlite3")
    for run_id in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"):
        make_run(store, run_id, age_days=OLD)
        history.started(run_id, "a request")
    history.finished("aaaaaaaaaaaa", "succeeded")
    history.finished("bbbbbbbbbbbb", "succeeded")
    # bbbb's row is old: the history says it started 40 days ago
    db = sqlite3.connect(settings.data_dir / "history.sqlite3")
    db.execute("UPDATE runs SET started_at = '2000-01-01T00:00:00+00:00' WHERE run_id = 'bbbbbbbbbbbb'")
    db.execute("UPDATE runs SET started_at = '2000-01-01T00:00:00+00:00' WHERE run_id = 'cccccccccccc'")
    db.commit()
    db.close()
    keep = protected_runs(settings)
    assert set(keep) == {"aaaaaaaaaaaa", "cccccccccccc"}  # recent row; a row still running
    outcome = apply_retention(settings)
    assert outcome is not None and [e.id for e in outcome.removed] == ["bbbbbbbbbbbb"]


def test_an_unfinished_run_is_protected_while_recent(settings: Settings) -> None:
    store = RunStore(settings.runs_dir)
    make_run(store, "aaaaaaaaaaaa", age_days=0.01, finished=False)  # another harness is running it
    make_run(store, "bbbbbbbbbbbb", age_days=0.01, size=10_000)
    outcome = apply_retention(with_env(HARNESS_RUNS_MAX_BYTES="1k"))
    assert outcome is not None and [e.id for e in outcome.removed] == ["bbbbbbbbbbbb"]
    assert outcome.protected == {"aaaaaaaaaaaa": "run in progress"}


def test_size_policy_removes_oldest_first_and_spares_the_run_just_finished(settings: Settings) -> None:
    store = RunStore(settings.runs_dir)
    for n, age in enumerate((5, 4, 3, 2, 1)):
        make_run(store, f"{n:012x}", age_days=age, size=100_000)
    small = with_env(HARNESS_RUNS_MAX_BYTES="250k")
    outcome = apply_retention(small, keep=["000000000000"])
    assert outcome is not None
    assert [e.id for e in outcome.removed] == ["000000000001", "000000000002", "000000000003"]
    assert sorted(e.id for e in store.list()) == ["000000000000", "000000000004"]


def test_retention_never_fails_the_run(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "history.sqlite3").write_bytes(b"not a database" * 100)
    make_run(RunStore(settings.runs_dir), "aaaaaaaaaaaa", age_days=OLD)
    assert apply_retention(settings) is None  # skipped, and nothing removed on a guess
    assert (settings.runs_dir / "aaaaaaaaaaaa").is_dir()


def test_one_prune_at_a_time(settings: Settings) -> None:
    store = RunStore(settings.runs_dir)
    make_run(store, "aaaaaaaaaaaa", age_days=OLD)
    with store.locked() as mine:
        assert mine
        assert apply_retention(settings) is None
    assert apply_retention(settings) is not None
