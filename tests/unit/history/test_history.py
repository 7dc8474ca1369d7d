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
        db.execute(
            "INSERT INTO plans (plan_id, started_at, owner, request, status) VALUES "
            "('dead-plan', '2026-01-01', ?, 'y', 'running')",
            (f"{__import__('socket').gethostname()}:999999:1",),
        )
    store = HistoryStore(path)
    statuses = {r["run_id"]: r["status"] for r in store.recent()}
    assert statuses == {"alive": "running", "dead": "interrupted"}
    assert [(p["plan_id"], p["status"]) for p in store.plans()] == [("dead-plan", "interrupted")]


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


def test_old_failures_fade_and_a_changed_scaffold_gets_another_chance(tmp_path: Path) -> None:
    import datetime as dt

    harness = Harness(Settings.from_env({"HARNESS_DATA_DIR": str(tmp_path)}))
    request = "summarise every CSV in ./data by region"
    version = harness.library.get("csv_summary").version
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=60)).isoformat(timespec="seconds")
    for n in range(4):
        harness.history.started(
            f"old{n}", request, strategy="use_template", template="csv_summary", started_at=long_ago
        )
        harness.history.finished(f"old{n}", "failed")
    ok, bad = harness.history.evidence({"csv_summary": version})["csv_summary"]
    assert ok == 0 and 0.2 < bad < 0.21  # four failures, each worth 0.5 ** (60 / 14)
    assert harness.analyse(request)[1].template == "csv_summary"  # tried again
    # Four fresh failures of an earlier version of the scaffold count as one.
    for n in range(4):
        harness.history.started(
            f"v{n}", request, strategy="use_template", template="csv_summary", template_version="0123456789abcdef"
        )
        harness.history.finished(f"v{n}", "failed")
    assert harness.analyse(request)[1].template == "csv_summary"
    # The same failures of the version in use now stop it being chosen.
    for n in range(4):
        harness.history.started(
            f"c{n}", request, strategy="use_template", template="csv_summary", template_version=version
        )
        harness.history.finished(f"c{n}", "failed")
    assert harness.analyse(request)[1].template != "csv_summary"
    assert harness.history.outcomes()["csv_summary"] == (0, 12)  # the raw counts stay for stats


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


def test_an_older_file_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, owner TEXT NOT "
            "NULL, request TEXT NOT NULL, workflow_type TEXT, complexity TEXT, strategy TEXT, template TEXT, status "
            "TEXT NOT NULL, exit_code INTEGER, duration_s REAL, estimated_duration_s REAL, tokens_used INTEGER DEFAULT "
            "0, estimated_tokens INTEGER DEFAULT 0, generated_id TEXT)"
        )
        db.execute(
            "INSERT INTO runs (run_id, started_at, owner, request, status, template, strategy) "
            "VALUES ('old', '2026-01-01T00:00:00+00:00', 'x', 'summarise', 'succeeded', 'csv_summary', 'use_template')"
        )
    store = HistoryStore(path)
    store.started("new", "again", plan_id="plan-1", phase="summary", attempt=2, analysis='{"a": 1}')
    store.finished("new", "succeeded", llm_calls=1, gate_passed=True)
    rows = {r["run_id"]: r for r in store.recent()}
    assert rows["old"]["template"] == "csv_summary" and rows["old"]["plan_id"] is None
    assert (rows["new"]["plan_id"], rows["new"]["phase"], rows["new"]["attempt"]) == ("plan-1", "summary", 2)
    assert store.outcomes() == {"csv_summary": (1, 0)}


def test_plans_are_recorded_with_their_runs_and_summarised(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    store.plan_started("plan-a", "two jobs", phases=2, stages=1, estimated_s=4.0)
    for n, status in enumerate(["succeeded", "failed"]):
        store.started(f"r{n}", "job", plan_id="plan-a", phase=f"p{n}", template="csv_summary")
        store.finished(f"r{n}", status, duration_s=1.0)
    store.plan_finished("plan-a", "failed", partial=0, wall_s=5.0, tokens_used=0, report="{}")
    store.plan_started("plan-b", "dies", phases=3, stages=2)  # its process is this one: still running
    plans = store.plans()
    assert [p["plan_id"] for p in plans] == ["plan-b", "plan-a"]
    assert [(r["phase"], r["status"]) for r in plans[1]["runs"]] == [("p0", "succeeded"), ("p1", "failed")]
    summary = store.stats()["plans"]
    assert summary == [
        {
            "plans": 1,
            "success_rate": 0.0,
            "partial": 0,
            "median_wall_s": 5.0,
            "median_tokens": 0,
            "median_estimate_error": 0.25,
        }
    ]


def test_history_and_stats_commands_show_plans(capsys: pytest.CaptureFixture[str]) -> None:
    store = Harness(Settings.from_env()).history
    store.plan_started("plan-x", "summarise, then zip", phases=2, stages=2, estimated_s=3.0)
    store.started("r1", "summarise", plan_id="plan-x", phase="summary", template="csv_summary", attempt=1)
    store.finished("r1", "succeeded", duration_s=1.5)
    store.plan_finished("plan-x", "succeeded", partial=1, wall_s=2.0, tokens_used=0)
    assert main(["history", "--plans"]) == 0
    out = capsys.readouterr().out
    assert "plan-x" in out and "succeeded, partial" in out and "summary #1: succeeded (csv_summary, 1.50s)" in out
    assert main(["history"]) == 0
    capsys.readouterr()  # the table folds at the test console's width; the JSON below is exact
    assert main(["history", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["plan_id"] == "plan-x"
    assert main(["stats"]) == 0
    assert "plans: 1, 100% succeeded, 1 partial, median 2.0s wall" in capsys.readouterr().out


def test_only_the_scaffolds_own_failures_count_against_it(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3")
    for n in range(3):
        store.started(f"ok{n}", "summarise", template="csv_summary", strategy="use_template")
        store.finished(f"ok{n}", "succeeded")
    # Twenty runs on unreadable data or cut short by the machine say nothing about the scaffold.
    for n in range(20):
        store.started(f"in{n}", "summarise", template="csv_summary", strategy="use_template")
        store.finished(f"in{n}", "failed", exit_code=3, cause="input" if n % 2 else "environment")
    store.started("bug", "summarise", template="csv_summary", strategy="use_template")
    store.finished("bug", "failed", exit_code=1, cause="scaffold")
    ok, bad = store.evidence()["csv_summary"]
    assert (ok, bad) == pytest.approx((3.0, 1.0), abs=0.01)
    assert store.outcomes()["csv_summary"] == (3, 1)
    row = next(r for r in store.stats()["by_template"] if r["template"] == "csv_summary")
    assert row["failures_by_cause"] == {"environment": 10, "input": 10, "scaffold": 1}


@pytest.mark.parametrize(
    ("status", "exit_code", "cause"),
    [
        ("succeeded", 0, None),
        ("failed", 2, "input"),
        ("failed", 3, "input"),
        ("failed", 1, "scaffold"),
        ("failed", 0, "scaffold"),  # exit 0 with a broken assertion: the scaffold broke its promise
        ("timed_out", None, "environment"),
        ("oom_killed", 137, "environment"),
    ],
)
def test_failure_cause(status: str, exit_code: int | None, cause: str | None) -> None:
    from types import SimpleNamespace

    from harness.history.record import failure_cause

    report = SimpleNamespace(execution_result=SimpleNamespace(status=status, exit_code=exit_code))
    assert failure_cause(report) == cause  # type: ignore[arg-type]
