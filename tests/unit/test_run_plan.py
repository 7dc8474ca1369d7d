"""run_plan with a scripted phase runner on the thread executor: order, overlap, retries, skips; no engine."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from harness.dispatch.plan import Plan, PlanPhase
from harness.orchestrate import PhaseResult, PhaseTask, ThreadExecutor, run_plan
from harness.schedule import PhaseOutcome


class FakeHistory:
    """Records the plan's start and end as the pipeline's history would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def plan_started(self, plan_id: str, request: str, **_: Any) -> None:
        self.calls.append(("started", plan_id))

    def plan_finished(self, plan_id: str, status: str, **_: Any) -> None:
        self.calls.append(("finished", status))


class FakeHarness:
    """Only what run_plan asks of the pipeline when its phases run elsewhere."""

    llm_available = False

    def __init__(self) -> None:
        self.history = FakeHistory()


class Scripted:
    """A phase runner returning canned statuses per attempt, after a short wait; logs every attempt."""

    def __init__(self, output: Path, script: dict[str, list[str]], delay: float = 0.2) -> None:
        self.output, self.script, self.delay = output, script, delay
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.tasks: list[PhaseTask] = []
        self.spans: dict[tuple[str, int], tuple[float, float]] = {}

    def __call__(self, task: PhaseTask) -> PhaseResult:
        start = time.monotonic() - self.t0
        time.sleep(self.delay)
        name = task.phase.name
        status = self.script.get(name, ["succeeded"])[task.attempt - 1]
        end = time.monotonic() - self.t0
        with self.lock:
            self.tasks.append(task)
            self.spans[name, task.attempt] = (start, end)
        outcome = PhaseOutcome(
            name=name,
            status=status,
            started_s=start,
            finished_s=end,
            attempts=task.attempt,
            output_dir=str(self.output / name),
            deliverables=(f"{name}/out.txt",) if status == "succeeded" else (),
            reason="" if status == "succeeded" else "canned failure",
        )
        return PhaseResult(outcome=outcome)


def phase(name: str, *deps: str, **kw: Any) -> PlanPhase:
    return PlanPhase(name=name, request=f"{name} job", depends_on=deps, **kw)


def run(tmp_path: Path, plan: Plan, runner: Scripted, workers: int = 2, **kw: Any) -> tuple[Any, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    with ThreadExecutor(runner, workers=workers) as executor:
        report = run_plan(
            FakeHarness(),
            plan,
            "test",
            inputs=(tmp_path / "in",),
            output_dir=tmp_path / "out",
            backend=None,  # type: ignore[arg-type]  # the scripted runner needs no engine
            on_phase=lambda name, state, report: seen.append((name, state)),
            executor=executor,
            **kw,
        )
    return report, seen


def test_phases_run_in_dependency_order_and_independent_ones_together(tmp_path: Path) -> None:
    plan = Plan(phases=(phase("a"), phase("b"), phase("c", "a", "b")))
    runner = Scripted(tmp_path / "out", {})
    report, seen = run(tmp_path, plan, runner)
    (a0, a1), (b0, b1), (c0, _) = runner.spans["a", 1], runner.spans["b", 1], runner.spans["c", 1]
    assert a0 < b1 and b0 < a1  # a and b overlapped
    assert c0 >= max(a1, b1)  # c waited for both
    c = next(t for t in runner.tasks if t.phase.name == "c")
    # c sees the plan's inputs, then its dependencies' outputs.
    assert c.inputs == (tmp_path / "in", tmp_path / "out/a", tmp_path / "out/b")
    assert report.status == "succeeded" and report.phases_completed == 3 and not report.partial
    assert report.deliverables == ("a/out.txt", "b/out.txt", "c/out.txt")
    assert sorted(seen[:2]) == [("a", "succeeded"), ("b", "succeeded")] and seen[2] == ("c", "succeeded")
    assert json.loads((tmp_path / "out" / "plan_report.json").read_text())["plan_id"] == report.plan_id


def test_a_retried_phase_counts_from_its_first_attempt_and_is_announced_once(tmp_path: Path) -> None:
    plan = Plan(phases=(phase("a", on_failure="retry"), phase("b", "a")))
    runner = Scripted(tmp_path / "out", {"a": ["failed", "succeeded"]}, delay=0.05)
    report, seen = run(tmp_path, plan, runner)
    by = {p.name: p for p in report.phases}
    assert by["a"].attempts == 2 and report.retries == 1 and report.status == "succeeded"
    assert by["a"].started_s == runner.spans["a", 1][0] and by["a"].finished_s == runner.spans["a", 2][1]
    assert runner.spans["b", 1][0] >= runner.spans["a", 2][1]
    assert seen == [("a", "succeeded"), ("b", "succeeded")]
    retry = [t for t in runner.tasks if t.phase.name == "a"][1]
    assert retry.request == "a job" and retry.strategy is None


def test_a_retry_takes_the_thread_its_failed_attempt_left(tmp_path: Path) -> None:
    plan = Plan(phases=(phase("a", on_failure="retry"), phase("b")))
    runner = Scripted(tmp_path / "out", {"a": ["failed", "succeeded"]}, delay=0.05)
    report, _ = run(tmp_path, plan, runner, workers=1)
    assert [(t.phase.name, t.attempt) for t in runner.tasks] == [("a", 1), ("a", 2), ("b", 1)]
    assert report.status == "succeeded"


def test_failures_follow_policy_and_every_skip_is_announced(tmp_path: Path) -> None:
    plan = Plan(phases=(phase("check", on_failure="skip"), phase("other"), phase("after", "check")))
    report, seen = run(tmp_path, plan, Scripted(tmp_path / "out", {"check": ["failed"]}, delay=0.05))
    assert {p.name: p.status for p in report.phases} == {"check": "failed", "other": "succeeded", "after": "skipped"}
    assert ("after", "skipped") in seen and report.status == "failed"

    stop = Plan(phases=(phase("check"), phase("after", "check")))
    report, seen = run(tmp_path / "2", stop, Scripted(tmp_path / "2/out", {"check": ["failed"]}, delay=0.05))
    assert [(p.name, p.status, p.reason) for p in report.phases] == [
        ("check", "failed", "canned failure"),
        ("after", "skipped", "an earlier phase failed"),
    ]
    assert seen == [("check", "failed"), ("after", "skipped")]  # a stop's skip shows too, not "waiting"


def test_past_the_deadline_the_optional_phase_is_dropped_and_the_plan_is_partial(tmp_path: Path) -> None:
    plan = Plan(phases=(phase("first"), phase("extra", "first", optional=True)))
    runner = Scripted(tmp_path / "out", {}, delay=0.05)
    report, seen = run(tmp_path, plan, runner, deadline_s=0.0)
    assert report.partial and report.status == "succeeded" and ("extra", "skipped") in seen
    assert {p.name: p.reason for p in report.phases}["extra"] == "past the plan's deadline"
    assert [t.phase.name for t in runner.tasks] == ["first"]
