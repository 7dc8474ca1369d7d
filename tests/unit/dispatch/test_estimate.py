"""The estimate rules as pure functions, and the LLM's second opinion's reasons for not being asked."""

from __future__ import annotations

from typing import Any

from harness.dispatch import estimate, llm_analyse
from harness.dispatch.analyse import analyse
from harness.dispatch.decide import decide
from harness.generation.scaffolds import load_library

LIBRARY = load_library().scaffolds
BY_NAME = {s.name: s for s in LIBRARY}
ANALYSIS = analyse("summarise every CSV by region", LIBRARY)
DECISION = decide(ANALYSIS, BY_NAME)


def _medians(n: int) -> estimate.Medians:
    def medians(**where: Any) -> tuple[int, float, int]:
        assert where == {"template": "csv_summary", "strategy": "use_template"}
        return n, 4.25, 120

    return medians


def test_history_replaces_the_priors_from_three_runs() -> None:
    assert estimate.from_history(ANALYSIS, DECISION, _medians(2)) == ANALYSIS
    known = estimate.from_history(ANALYSIS, DECISION, _medians(3)).estimate
    assert (known.duration_s, known.tokens, known.from_history) == (4.25, 120, True)
    assert known.basis == "median of 3 past csv_summary runs"


def test_agent_calls_generation_and_budget_add_up() -> None:
    asked = estimate.with_agent_calls(ANALYSIS, DECISION, ("summariser",), {"summariser": 500})
    assert asked.estimate.tokens == ANALYSIS.estimate.tokens + estimate.AGENT_PROMPT_TOKENS + 500
    assert asked.roles[0] == "summariser" and "1 agent call(s)" in asked.estimate.basis
    assert estimate.with_agent_calls(ANALYSIS, DECISION, (), {}) == ANALYSIS
    written = estimate.for_generation(ANALYSIS, "generate_custom", 5000).estimate
    assert written.duration_s == ANALYSIS.estimate.duration_s + estimate.GENERATION_SECONDS and written.tokens == 5000
    historic = estimate.from_history(ANALYSIS, DECISION, _medians(5))
    assert estimate.for_generation(historic, "generate_custom", 5000) == historic
    assert estimate.with_budget(ANALYSIS, 9000).estimate.token_budget == 9000


def test_the_second_opinion_says_why_it_was_not_asked() -> None:
    def opinion(llm: object, **kw: Any) -> str:
        options: dict[str, Any] = {"factor": {}, "mode": "auto", "threshold": 0.45, "forced": False, **kw}
        return llm_analyse.second_opinion(ANALYSIS, llm, LIBRARY, ["analyst"], **options).llm

    assert opinion(None) == "no LLM configured"
    assert opinion(object(), forced=True) == "not asked: the scaffold or strategy was chosen explicitly"
    assert opinion(object(), mode="off") == "not asked: turned off (HARNESS_LLM_ANALYSIS=off)"
    assert opinion(object()) == "not asked: the heuristic analysis is confident"
