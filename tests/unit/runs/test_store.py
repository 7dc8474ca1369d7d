"""The runs folder's one writer: events.jsonl under caps, run files, listing, loading and pruning."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.events import EventsDropped, OutputEvent, RunFinished, RunStarted
from harness.runs import RunPrunedError, RunStore


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]


def test_the_log_stops_at_its_event_count_and_ends_with_one_marker(tmp_path: Path) -> None:
    folder = RunStore(tmp_path, max_events=10).create("0123456789ab")
    kept = []
    with folder.events() as log:
        kept.append(log.write(RunStarted(seq=1, run_id="r", image="i", pooled=False)))
        for i in range(2, 100):
            kept.append(log.write(OutputEvent(seq=i, text=f"line {i}")))
        kept.append(log.write(EventsDropped(seq=100, count=5, bytes=500, blank_lines=7)))
        kept.append(log.write(RunFinished(seq=101, run_id="r", status="succeeded", exit_code=0, duration_s=1)))
    rows = lines(folder.path / "events.jsonl")
    assert kept.count(False) == 89  # 98 output lines, 9 of them fit after run_started
    assert [r["kind"] for r in rows[-2:]] == ["run_finished", "events_dropped"]
    assert len(rows) == 12 and sum(r["kind"] == "events_dropped" for r in rows) == 1
    marker = rows[-1]
    assert marker["count"] == 89 + 5 and marker["blank_lines"] == 7 and marker["seq"] == 102
    assert marker["bytes"] > 500


def test_the_log_stops_at_its_byte_cap(tmp_path: Path) -> None:
    folder = RunStore(tmp_path, max_bytes=64 * 1024).create("0123456789ab")
    with folder.events() as log:
        for i in range(200):
            log.write(OutputEvent(seq=i, text="z" * 1000))
    size = (folder.path / "events.jsonl").stat().st_size
    assert 60 * 1024 < size <= 64 * 1024 + 200  # the cap, plus the marker line
    assert lines(folder.path / "events.jsonl")[-1]["kind"] == "events_dropped"


def test_no_marker_when_nothing_was_dropped(tmp_path: Path) -> None:
    folder = RunStore(tmp_path).create("0123456789ab")
    with folder.events() as log:
        log.write(OutputEvent(seq=1, text="hi"))
    assert [r["kind"] for r in lines(folder.path / "events.jsonl")] == ["output"]


def make_run(store: RunStore, run_id: str, *, age_days: float, size: int = 1000, status: str = "succeeded") -> None:
    folder = store.create(run_id)
    folder.write_text("script.py", "x" * size)
    if status:
        folder.write_text("result.json", json.dumps({"status": status}))
    stamp = time.time() - age_days * 86400
    for path in [*folder.path.iterdir(), folder.path]:
        os.utime(path, (stamp, stamp))


def test_list_is_oldest_first_with_status_and_size(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    make_run(store, "bbbbbbbbbbbb", age_days=1, status="failed")
    make_run(store, "aaaaaaaaaaaa", age_days=3, size=5000)
    (tmp_path / "not-a-run").mkdir()
    entries = store.list()
    assert [(e.id, e.status, e.finished) for e in entries] == [
        ("aaaaaaaaaaaa", "succeeded", True),
        ("bbbbbbbbbbbb", "failed", True),
    ]
    assert entries[0].size == 5000 + len('{"status": "succeeded"}')


def test_prune_by_age_then_by_size_oldest_first_sparing_the_protected(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    for n, age in enumerate((40, 35, 20, 10, 5, 1)):
        make_run(store, f"{n:012x}", age_days=age, size=10_000)
    outcome = store.prune(older_than_s=30 * 86400, max_bytes=35_000, protected={"000000000001": "pending review g-x"})
    # 0 is too old; 1 is too old but protected; then 2 and 3 go (oldest first) until the rest fit
    assert [e.id for e in outcome.removed] == ["000000000000", "000000000002", "000000000003"]
    assert outcome.reasons["000000000000"] == "older than 30 days"
    assert outcome.reasons["000000000002"].startswith("runs folder over")
    assert outcome.protected == {"000000000001": "pending review g-x"}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "000000000001",
        "000000000004",
        "000000000005",
    ]
    assert outcome.freed == sum(e.size for e in outcome.removed) > 30_000


def test_dry_run_removes_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    make_run(store, "aaaaaaaaaaaa", age_days=100)
    outcome = store.prune(older_than_s=86400, dry_run=True)
    assert [e.id for e in outcome.removed] == ["aaaaaaaaaaaa"] and (tmp_path / "aaaaaaaaaaaa").is_dir()


def test_a_pruned_run_says_so_when_loaded(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    make_run(store, "aaaaaaaaaaaa", age_days=100)
    store.prune(older_than_s=30 * 86400)
    with pytest.raises(RunPrunedError) as caught:
        store.load("aaaaaaaaaaaa")
    assert caught.value.one_line().startswith("run aaaaaaaaaaaa was pruned (retention: older than 30 days)")
    assert "\n" not in caught.value.one_line()
    with pytest.raises(UserError, match="no run bbbbbbbbbbbb"):
        store.load("bbbbbbbbbbbb")
    with pytest.raises(UserError, match="not a run id"):
        store.load("../etc")


def test_prune_never_follows_links_out_of_the_runs_folder(tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    store = RunStore(tmp_path / "runs")
    make_run(store, "aaaaaaaaaaaa", age_days=100)
    (tmp_path / "runs" / "aaaaaaaaaaaa" / "output").symlink_to(outside)
    os.utime(tmp_path / "runs" / "aaaaaaaaaaaa" / "output", (0, 0), follow_symlinks=False)
    os.utime(tmp_path / "runs" / "aaaaaaaaaaaa", (0, 0))
    store.prune(older_than_s=86400)
    assert (outside / "keep.txt").read_text() == "keep" and not (tmp_path / "runs" / "aaaaaaaaaaaa").exists()
