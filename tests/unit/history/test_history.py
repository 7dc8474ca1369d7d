"""The history store: transactional records, interrupted runs, damage reported, and dispatch that learns."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UserError
from harness.history.store import HistoryStore, success_factor
from harness.pipeline import Harness
from harness.settings import Settings


def test_runs_are_recorded_and_summarised(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    for n, status in enumerate(["succeeded", "succeeded", "failed"]):
        store.started(
            f"r{n}",
            "summarise",
            workflow_type="automation",
            strategy="use_template",
            template="csv_summary",
            estimated_duration_s=2.0,
        )
        store.finished(f"r{n}", status, exit_code=0 if status == "succeeded" else 1, duration_s=3.0, tokens_used=0)
    assert [r["run_id"] for r in store.recent(2)] == ["r2", "r1"]
    assert store.outcomes() == {"csv_summary": (2, 1)}
    row = store.stats()["by_template"][0]
    assert row["runs"] == 3 and row["success_rate"] == pytest.approx(0.667, abs=1e-3)
    assert row["median_duration_s"] == 3.0 and row["median_estimate_error"] == 0.5


def test_a_run_whose_process_died_shows_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    HistoryStore(path).started("alive", "x")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO runs (run_id, started_at, owner, request, status) VALUES "
            "('dead', '2026-01-01', ?, 'y', 'running')",
            (f"{__import__('socket').gethostname()}:999999:1",),
        )
    statuses = {r["run_id"]: r["status"] for r in HistoryStore(path).recent()}
    assert statuses == {"alive": "running", "dead": "interrupted"}


def test_a_damaged_file_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="damaged"):
        HistoryStore(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_concurrent_writers_do_not_lose_runs(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"  # created by the racing writers themselves

    def writer(prefix: str) -> None:
        store = HistoryStore(path)
        for n in range(25):
            store.started(f"{prefix}{n}", "x", template="t", strategy="use_template")
            store.finished(f"{prefix}{n}", "succeeded")

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abcdefgh"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert HistoryStore(path).outcomes() == {"t": (200, 0)}


def test_success_factor_is_neutral_then_learns() -> None:
    assert success_factor(0, 0) == 1.0
    assert success_factor(10, 0) == 1.2
    assert success_factor(0, 1) > 0.6 > success_factor(0, 4)


def test_dispatch_stops_choosing_a_scaffold_that_keeps_failing(tmp_path: Path) -> None:
    settings = Settings.from_env({"HARNESS_DATA_DIR": str(tmp_path)})
    harness = Harness(settings)
    request = "summarise every CSV in ./data by region"
    assert harness.analyse(request)[1].template == "csv_summary"
    for n in range(4):
        harness.history.started(f"f{n}", request, strategy="use_template", template="csv_summary")
        harness.history.finished(f"f{n}", "failed")
    analysis, decision = harness.analyse(request)
    assert decision.template != "csv_summary"
    assert any("history: csv_summary 0 succeeded / 4 failed" in f for f in analysis.workflow_features)
    for n in range(12):
        harness.history.started(f"s{n}", request, strategy="use_template", template="csv_summary")
        harness.history.finished(f"s{n}", "succeeded")
    assert harness.analyse(request)[1].template == "csv_summary"


def test_history_and_stats_commands(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    assert main(["run", "summarise every CSV by region", "--dry-run"]) == 0  # dry runs are not history
    capsys.readouterr()
    store = HistoryStore(tmp_path / "history.sqlite3")
    store.started(
        "r1", "find errors in logs", workflow_type="automation", strategy="use_template", template="log_analysis"
    )
    store.finished("r1", "succeeded", duration_s=1.5)
    assert main(["history", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in rows] == ["r1"]
    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["by_template"][0]["template"] == "log_analysis"
    assert stats["by_workflow_type"][0]["workflow_type"] == "automation"


def test_estimates_come_from_history_once_there_is_some(tmp_path: Path) -> None:
    harness = Harness(Settings.from_env({"HARNESS_DATA_DIR": str(tmp_path)}))
    request = "summarise every CSV in ./data by region"
    assert harness.analyse(request)[0].estimate.basis.startswith("csv_summary's expected run time")
    for n, seconds in enumerate([6.0, 7.0, 9.0]):
        harness.history.started(f"r{n}", request, strategy="use_template", template="csv_summary")
        harness.history.finished(f"r{n}", "succeeded", duration_s=seconds, tokens_used=0)
    estimate = harness.analyse(request)[0].estimate
    assert (estimate.duration_s, estimate.basis) == (7.0, "median of 3 past csv_summary runs")
