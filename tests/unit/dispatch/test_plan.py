"""Plans from requests: stages on sequencing words, parallel phases only when each part stands alone."""

from __future__ import annotations

import pytest

from harness.dispatch.plan import Plan, PlanPhase, describe, split_request
from harness.pipeline import Harness
from harness.settings import Settings

HARNESS = Harness(Settings.from_env({}))


def plan_of(request: str) -> Plan | None:
    return split_request(request, lambda part: HARNESS.analyse(part)[1])


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
