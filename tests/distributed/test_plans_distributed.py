"""A plan over two workers: two parallel phases on different workers, a third reading both their outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis
from fleetkit import Fleet, Redis, Remote

from harness.dispatch.plan import Plan, PlanPhase
from harness.distributed.jobs import keys
from harness.orchestrate import run_plan
from harness.pipeline import Harness
from harness.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SALES = ROOT / "scaffolds/csv_summary/example/sales"
LOGS = ROOT / "scaffolds/log_analysis/example/logs"


def test_a_three_phase_plan_spreads_over_two_workers_with_artifact_hand_off(
    fleet: Fleet, redis_server: Redis, remote: Remote, tmp_path: Path
) -> None:
    fleet.start("w1")
    fleet.start("w2")
    plan = Plan(
        phases=(
            PlanPhase(
                name="summary", request="summarise by region", template="csv_summary", params={"group_by": "region"}
            ),
            PlanPhase(name="errors", request="log_analysis phase", template="log_analysis"),
            PlanPhase(name="bundle", request="zip it", template="archive_builder", depends_on=("summary", "errors")),
        )
    )
    harness = Harness(Settings.from_env())
    report = run_plan(
        harness,
        plan,
        "test",
        inputs=(SALES, LOGS),
        output_dir=tmp_path,
        backend=remote(),
        max_parallel=2,
    )
    assert report.status == "succeeded", report.phases
    by = {p.name: p for p in report.phases}
    assert by["summary"].started_s < by["errors"].finished_s and by["errors"].started_s < by["summary"].finished_s
    assert by["bundle"].started_s >= max(by["summary"].finished_s, by["errors"].finished_s)

    conn = redis.Redis.from_url(redis_server.url)
    ran_on = {}
    for name, phase in by.items():
        assert phase.run_id is not None
        first = conn.xrange(keys(phase.run_id).events, count=1)[0][1]
        assert first[b"t"] == b"attempt"
        ran_on[name] = first[b"worker"].decode()
    conn.close()
    # The parallel phases were taken by different workers (each runs one job at a time).
    assert {ran_on["summary"], ran_on["errors"]} == {"harness@w1", "harness@w2"}

    # The dependent phase received both phases' outputs, whichever worker made them.
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    packed = {f["path"] for f in manifest["files"]}
    assert {"summary/summary.json", "errors/log_report.json"} <= packed
    assert "bundle/archive.zip" in report.deliverables and report.gates_passed == "6/6"
    # History keeps the plan and its phases' runs as for a local plan.
    recorded = harness.history.plans()[0]
    assert recorded["plan_id"] == report.plan_id and recorded["status"] == "succeeded"
    assert sorted(r["phase"] for r in recorded["runs"]) == ["bundle", "errors", "summary"]


def test_harness_run_through_the_broker(fleet: Fleet, redis_server: Redis, cli: Any, tmp_path: Path) -> None:
    fleet.start("w1")
    code, out, err = cli(
        "--broker",
        redis_server.url,
        "run",
        "summarise every CSV in the sales data by region",
        "--input",
        str(SALES),
        "--output",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    assert "succeeded" in out + err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary
    conn = redis.Redis.from_url(redis_server.url)
    assert len(list(conn.scan_iter("harness:run:*:events"))) == 1  # it ran on the worker
    conn.close()
