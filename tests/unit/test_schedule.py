"""next_steps on hand-made plans and outcomes: no engine, no threads, no clock."""

from __future__ import annotations

from typing import Any

from harness.dispatch.plan import Plan, PlanPhase
from harness.schedule import PhaseOutcome, Skip, Start, Steps, next_steps


def ph(name: str, *deps: str, **kw: Any) -> PlanPhase:
    return PlanPhase(name=name, request=f"{name} job", depends_on=deps, **kw)


def ran(name: str, status: str = "succeeded", attempts: int = 1) -> PhaseOutcome:
    return PhaseOutcome(name=name, status=status, attempts=attempts, started_s=0.0, finished_s=1.0)


def steps(plan: Plan, *done: PhaseOutcome, running: tuple[str, ...] = (), **kw: Any) -> Steps:
    kw.setdefault("elapsed_s", 0.0)
    kw.setdefault("tokens_used", 0)
    return next_steps(plan, {o.name: o for o in done}, running=running, **kw)


def ready(result: Steps) -> list[tuple[str, int]]:
    return [(s.name, s.attempt) for s in result.ready]


def skipped(result: Steps) -> dict[str, tuple[str, str]]:
    return {s.name: (s.cause, s.reason) for s in result.skipped}


DIAMOND = Plan(phases=(ph("a"), ph("b"), ph("c", "a", "b"), ph("d", "c")))


def test_independent_phases_start_together_and_dependents_wait_for_all_their_inputs() -> None:
    assert steps(DIAMOND) == Steps(ready=(Start(name="a"), Start(name="b")))
    assert steps(DIAMOND, running=("a", "b")) == Steps()
    assert steps(DIAMOND, ran("a"), running=("b",)) == Steps()
    assert ready(steps(DIAMOND, ran("a"), ran("b"))) == [("c", 1)]
    assert ready(steps(DIAMOND, ran("a"), ran("b"), ran("c"))) == [("d", 1)]
    assert steps(DIAMOND, ran("a"), ran("b"), ran("c"), ran("d")) == Steps()


def test_a_failure_under_stop_skips_everything_not_yet_started() -> None:
    result = steps(DIAMOND, ran("a", "failed"), running=("b",))
    assert result.ready == ()
    assert skipped(result) == {
        "c": ("stopped", "an earlier phase failed"),
        "d": ("stopped", "an earlier phase failed"),
    }
    assert not any(s.partial for s in result.skipped)
    # not_run (the request lacked something) stops the plan the same way.
    assert set(skipped(steps(DIAMOND, ran("a", "not_run")))) == {"b", "c", "d"}


def test_a_failure_under_skip_skips_its_dependents_only_and_the_rest_goes_on() -> None:
    plan = Plan(
        phases=(ph("check", on_failure="skip"), ph("other"), ph("after-check", "check"), ph("last", "after-check"))
    )
    result = steps(plan, ran("check", "failed"), running=("other",))
    assert result.ready == ()
    # Skipped transitively, in one step.
    assert skipped(result) == {
        "after-check": ("dependency", "a phase it needs did not succeed"),
        "last": ("dependency", "a phase it needs did not succeed"),
    }
    assert result.skipped[0].outcome() == PhaseOutcome(
        name="after-check", status="skipped", reason="a phase it needs did not succeed"
    )


def test_a_phase_skipped_for_its_dependencies_does_not_stop_the_plan() -> None:
    # "after" has the default stop policy, but it never ran: "other" still starts.
    plan = Plan(phases=(ph("check", on_failure="skip"), ph("after", "check"), ph("other", "after"), ph("free")))
    result = steps(plan, ran("check", "failed"), running=("free",))
    assert set(skipped(result)) == {"after", "other"}
    done = [ran("check", "failed"), PhaseOutcome(name="after", status="skipped", reason="x"), ran("free")]
    plan2 = Plan(phases=(*plan.phases, ph("late", "free")))
    assert ready(steps(plan2, *done, PhaseOutcome(name="other", status="skipped"))) == [("late", 1)]


def test_retry_runs_a_failed_phase_once_more_and_its_dependents_wait() -> None:
    plan = Plan(phases=(ph("a", on_failure="retry"), ph("b", "a")))
    assert ready(steps(plan, ran("a", "failed"))) == [("a", 2)]
    assert steps(plan, ran("a", "failed"), running=("a",)) == Steps()
    assert ready(steps(plan, ran("a", attempts=2))) == [("b", 1)]
    # The second failure is final: the dependents are skipped and the plan does not stop.
    result = steps(plan, ran("a", "timed_out", attempts=2))
    assert result.ready == () and skipped(result) == {"b": ("dependency", "a phase it needs did not succeed")}
    # A phase that could not be prepared is not retried.
    assert set(skipped(steps(plan, ran("a", "not_run")))) == {"b"}


def test_repair_retries_only_with_an_llm() -> None:
    plan = Plan(phases=(ph("a", on_failure="repair"), ph("b", "a")))
    assert ready(steps(plan, ran("a", "failed"), repair=True)) == [("a", 2)]
    assert skipped(steps(plan, ran("a", "failed"))) == {"b": ("dependency", "a phase it needs did not succeed")}


def test_past_the_deadline_optional_phases_are_dropped_and_required_ones_go_on() -> None:
    plan = Plan(
        phases=(ph("first"), ph("extra", "first", optional=True), ph("after-extra", "extra"), ph("must", "first"))
    )
    result = steps(plan, ran("first"), elapsed_s=2.0, deadline_s=1.0)
    assert ready(result) == [("must", 1)]
    assert skipped(result) == {
        "extra": ("deadline", "past the plan's deadline"),
        "after-extra": ("dependency", "a phase it needs did not succeed"),
    }
    assert [s.partial for s in result.skipped] == [True, False]
    # At the deadline, not past it: nothing is dropped.
    assert ready(steps(plan, ran("first"), elapsed_s=1.0, deadline_s=1.0)) == [("extra", 1), ("must", 1)]
    # A phase already running or being retried is not dropped.
    retried = Plan(phases=(ph("x", optional=True, on_failure="retry"), ph("y", optional=True)))
    result = steps(retried, ran("x", "failed"), running=("y",), elapsed_s=5.0, deadline_s=0.0)
    assert ready(result) == [("x", 2)] and result.skipped == ()


def test_over_the_token_budget_optional_phases_are_dropped() -> None:
    plan = Plan(phases=(ph("first"), ph("extra", "first", optional=True)))
    result = steps(plan, ran("first"), tokens_used=5, budget=3)
    assert result.ready == () and result.skipped == (
        Skip(name="extra", reason="over the plan's token budget (5 > 3)", cause="budget"),
    )
    assert result.skipped[0].partial
    assert ready(steps(plan, ran("first"), tokens_used=3, budget=3)) == [("extra", 1)]
    # The deadline is named when both are exceeded.
    assert (
        skipped(steps(plan, ran("first"), tokens_used=5, budget=3, elapsed_s=1, deadline_s=0))["extra"][0] == "deadline"
    )


def test_a_stopped_plan_still_drops_optional_phases_for_the_deadline_first() -> None:
    plan = Plan(phases=(ph("a"), ph("b", optional=True), ph("c")))
    result = steps(plan, ran("a", "failed"), elapsed_s=1.0, deadline_s=0.0)
    assert skipped(result) == {
        "b": ("deadline", "past the plan's deadline"),
        "c": ("stopped", "an earlier phase failed"),
    }
