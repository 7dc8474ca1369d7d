"""`harness runs list|show|prune` without an engine."""

from __future__ import annotations

import json
import os
import time

import pytest

from harness.runs import RunStore
from harness.settings import Settings
from tests.conftest import Cli


def make_run(store: RunStore, run_id: str, *, age_days: float, size: int = 2048) -> None:
    folder = store.create(run_id)
    folder.write_text("events.jsonl", "x" * size)
    folder.write_text("result.json", json.dumps({"status": "failed"}))
    stamp = time.time() - age_days * 86400
    for path in [*folder.path.iterdir(), folder.path]:
        os.utime(path, (stamp, stamp))


@pytest.fixture
def store() -> RunStore:
    store = RunStore(Settings.from_env().runs_dir)
    make_run(store, "aaaaaaaaaaaa", age_days=60)
    make_run(store, "bbbbbbbbbbbb", age_days=10)
    make_run(store, "cccccccccccc", age_days=0.5)
    return store


def test_list_shows_every_run_oldest_first(cli: Cli, store: RunStore) -> None:
    code, out, err = cli("runs", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]
    assert {r["status"] for r in rows} == {"failed"} and all(r["size"] > 2048 for r in rows)
    code, out, err = cli("runs", "list")
    assert code == 0 and "aaaaaaaaaaaa" in out and "3 folder(s)" in err


def test_prune_dry_run_then_prune_then_show_says_pruned(cli: Cli, store: RunStore) -> None:
    code, out, _ = cli("runs", "prune", "--older-than", "7d", "--dry-run")
    assert code == 0 and "would remove aaaaaaaaaaaa" in out and "would remove bbbbbbbbbbbb" in out
    assert len(store.list()) == 3
    code, out, _ = cli("runs", "prune", "--older-than", "7d")
    assert code == 0 and "removed 2 folder(s)" in out and "cccccccccccc" not in out
    assert [e.id for e in store.list()] == ["cccccccccccc"]
    code, _, err = cli("runs", "show", "aaaaaaaaaaaa")
    error = [line for line in err.splitlines() if line.startswith("Error:")]
    assert (
        code == 2 and error == [error[0]] and "run aaaaaaaaaaaa was pruned (retention: older than 7 days)" in error[0]
    )


def test_prune_by_size_reports_the_bytes_freed(cli: Cli, store: RunStore) -> None:
    code, out, _ = cli("runs", "prune", "--max-size", "3k", "--json")
    outcome = json.loads(out)
    assert code == 0 and [e["id"] for e in outcome["removed"]] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    assert outcome["freed"] == sum(e["size"] for e in outcome["removed"]) and outcome["remaining"] <= 3 * 1024


def test_prune_without_options_applies_the_default_policy(cli: Cli, store: RunStore) -> None:
    code, out, err = cli("runs", "prune")
    assert code == 0 and "removed aaaaaaaaaaaa" in out and "bbbbbbbbbbbb" not in out
    assert "older than 30 days" in err


@pytest.mark.parametrize(
    ("args", "needle"), [(["--older-than", "soon"], "invalid age"), (["--max-size", "big"], "invalid size")]
)
def test_bad_values_are_usage_errors(cli: Cli, store: RunStore, args: list[str], needle: str) -> None:
    code, _, err = cli("runs", "prune", *args)
    assert code == 2 and needle in err and len(store.list()) == 3
