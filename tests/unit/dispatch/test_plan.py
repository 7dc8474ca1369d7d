"""Plans from requests: stages on sequencing words, parallel phases only when each part stands alone."""

from __future__ import annotations

import pytest

from harness.dispatch.plan import Plan, PlanPhase, describe, split_request
from harness.pipeline import Harness
from harness.settings import Settings


def harness() -> Harness:
    """A harness on this test's own, empty data directory: the tables test heuristics, not what was learnt."""
    return Harness(Settings.from_env())


def plan_of(request: str) -> Plan | None:
    return split_request(request, lambda part: harness().analyse(part)[1])


def test_parallel_then_dependent() -> None:
    plan = plan_of(
        "summarise every CSV by region and find the most common errors in the logs, "
        "then zip up the results with a manifest"
    )
    assert plan is not None
    rows = describe(plan)
    assert [(r["stage"], r["template"]) for r in rows] == [
        (1, "csv_summary"),
        (1, "log_analysis"),
        (2, "archive_builder"),
    ]
    assert rows[2]["depends_on"] == ["csv_summary", "log_analysis"] and rows[0]["parallel"]


def test_the_seeds_hybrid_example_is_a_sequence() -> None:
    plan = plan_of(
        "research these papers, then plan the project from the task list, then audit the code for hard-coded secrets"
    )
    assert plan is not None
    assert plan.stages() == [["research_digest"], ["project_plan"], ["security_audit"]]


@pytest.mark.parametrize(
    "request_text", ["summarise every CSV in ./data by region", "find duplicate photos and keep one copy of each"]
)
def test_single_jobs_are_not_plans(request_text: str) -> None:
    assert plan_of(request_text) is None


def test_cycles_and_unknown_dependencies_are_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        Plan(
            phases=(
                PlanPhase(name="a", request="x", depends_on=("b",)),
                PlanPhase(name="b", request="y", depends_on=("a",)),
            )
        )
    with pytest.raises(ValueError, match="unknown dependencies: c"):
        Plan(phases=(PlanPhase(name="a", request="x", depends_on=("c",)),))


def test_plan_estimate_packs_parallel_phases_and_adds_coordination() -> None:
    from harness.dispatch.plan import PHASE_PREPARE_S, STAGE_HANDOFF_S, estimate_plan
    from harness.records import Estimate

    plan = Plan(
        phases=(
            PlanPhase(name="a", request="a"),
            PlanPhase(name="b", request="b"),
            PlanPhase(name="c", request="c"),
            PlanPhase(name="d", request="d", depends_on=("a", "b", "c")),
        )
    )
    estimates = {
        "a": Estimate(duration_s=4, tokens=0, basis="prior"),
        "b": Estimate(duration_s=3, tokens=0, basis="prior"),
        "c": Estimate(duration_s=2, tokens=100, basis="median of 3 past runs"),
        "d": Estimate(duration_s=1, tokens=0, basis="prior"),
    }
    coordination = 4 * PHASE_PREPARE_S + STAGE_HANDOFF_S
    two = estimate_plan(plan, estimates, workers=2)
    assert two.duration_s == pytest.approx(5 + 1 + coordination)  # [4] and [3, 2] in stage one, then 1
    assert two.sequential_s == pytest.approx(10 + coordination)
    assert two.tokens == 100 and two.coordination_s == pytest.approx(coordination)
    assert "2 stage(s) on 2 worker(s)" in two.basis and "median of 3 past runs" in two.basis
    assert estimate_plan(plan, estimates, workers=8).duration_s == pytest.approx(4 + 1 + coordination)
    assert estimate_plan(plan, estimates, workers=1).duration_s == pytest.approx(two.sequential_s)


def test_analyze_json_includes_the_plan_and_its_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from harness.cli import main

    request = "summarise every CSV by region and find the most common errors in the logs, then zip up the results"
    assert main(["analyze", request, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert [(row["phase"], row["stage"], row["parallel"]) for row in plan["phases"]] == [
        ("csv_summary", 1, True),
        ("log_analysis", 1, True),
        ("archive_builder", 2, False),
    ]
    assert plan["estimate"]["duration_s"] < plan["estimate"]["sequential_s"]
    assert main(["analyze", "summarise every CSV by region", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"] is None


def test_analyze_reports_a_plan_as_hybrid_with_each_phase_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    """The request as a whole is dispatched as the plan (the seed's hybrid), not as one custom script."""
    from harness.cli import main

    request = "research asyncio best practices, then build a rate limiter with tests, then audit it"
    assert main(["analyze", "--local", request]) == 0
    captured = capsys.readouterr()
    assert "decision hybrid: a plan of 3 phases in 3 stage(s)" in captured.err
    assert "generate_custom" not in captured.err
    assert "plan stage 2: project_skeleton [use_template]" in captured.out
