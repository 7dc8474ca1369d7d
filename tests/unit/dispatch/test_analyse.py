"""Request analysis and dispatch on a small stand-in library (the real library has its own table)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.dispatch.analyse import analyse, extract_params, rank_scaffolds
from harness.dispatch.decide import decide
from harness.dispatch.text import stem, tokens


def param(type_: str = "str", *, required: bool = False, choices: tuple[str, ...] = (), example: object = None):
    return SimpleNamespace(type=type_, required=required, choices=choices, example=example, description="d")


LIBRARY = [
    SimpleNamespace(
        name="csv_summary",
        title="Summarise CSV files",
        description="Group CSV rows by a column and aggregate.",
        workflow_type="automation",
        keywords=["csv", "group", "aggregate", "totals"],
        expected_runtime_s=2.0,
        examples=[SimpleNamespace(request="summarise the sales CSVs by region")],
        parameters={"group_by": param(required=True, example="region"), "top": param("int")},
    ),
    SimpleNamespace(
        name="security_audit",
        title="Security audit of a code tree",
        description="Find secrets and risky calls.",
        workflow_type="security_audit",
        keywords=["security", "audit", "secrets", "vulnerability"],
        expected_runtime_s=5.0,
        examples=[SimpleNamespace(request="audit this repository for leaked secrets")],
        parameters={"severity": param("choice", choices=("low", "medium", "high"))},
    ),
    SimpleNamespace(
        name="log_analysis",
        title="Analyse log files",
        description="Count levels and top error messages.",
        workflow_type="automation",
        keywords=["log", "errors", "levels"],
        expected_runtime_s=2.0,
        examples=[SimpleNamespace(request="find the most common errors in these logs")],
        parameters={},
    ),
]
BY_NAME = {s.name: s for s in LIBRARY}


def test_stemming_folds_spelling_variants() -> None:
    assert len({stem(w) for w in ("summarise", "summarize", "summary", "summaries")}) == 1
    assert len({stem(w) for w in ("analyse", "analyze", "analysis")}) == 1
    assert tokens("the Regions") == ["region"]
    assert "group" in tokens("group_by") and tokens("group_by")[0] == stem("group_by")


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("Summarize every CSV in ./data by region", "csv_summary"),
        ("run a security audit and look for hard-coded secrets", "security_audit"),
        ("which errors show up most in the application logs?", "log_analysis"),
    ],
)
def test_requests_rank_the_right_scaffold_first(request_text: str, expected: str) -> None:
    ranked = rank_scaffolds(request_text, LIBRARY)
    assert ranked[0].name == expected and ranked[0].confidence >= 0.45
    assert ranked[0].matched_terms


@pytest.mark.parametrize("request_text", ["book me a flight to Lisbon", "write a haiku about spring"])
def test_unrelated_requests_match_nothing_confidently(request_text: str) -> None:
    ranked = rank_scaffolds(request_text, LIBRARY)
    assert not ranked or ranked[0].confidence < 0.45


def test_stated_parameters_are_extracted() -> None:
    params = {"group_by": param(), "top": param("int"), "severity": param("choice", choices=("low", "high"))}
    assert extract_params("summarise by region, top 5, high severity only", params) == {
        "group_by": "region",
        "top": "5",
        "severity": "high",
    }
    assert extract_params("group_by=country top: 3", params) == {"group_by": "country", "top": "3"}
    assert extract_params("summarise the files", params) == {}


def test_analysis_explains_type_complexity_and_estimate() -> None:
    analysis = analyse("Summarize every CSV in ./data by region", LIBRARY)
    assert analysis.workflow_type == "automation" and analysis.workflow_confidence > 0.5
    assert analysis.complexity == "simple" and analysis.workflow_features
    assert analysis.stated_params == {"group_by": "region"}
    assert analysis.estimate.tokens == 0 and analysis.estimate.duration_s == 3.0
    hard = analyse(
        "Research the options, then build a comprehensive deployment pipeline with rollback, then audit it for "
        "security vulnerabilities and produce a project plan with milestones",
        LIBRARY,
    )
    assert hard.complexity == "complex"


def test_decision_uses_the_template_or_says_what_is_missing() -> None:
    analysis = analyse("Summarize every CSV by region", LIBRARY)
    decision = decide(analysis, BY_NAME)
    assert decision.strategy == "use_template" and decision.template == "csv_summary" and not decision.missing
    assert decision.params == {"group_by": "region"}
    bare = decide(analyse("summarise the CSV files", LIBRARY), BY_NAME)
    assert bare.template == "csv_summary" and bare.missing and bare.missing[0].name == "group_by"
    forced = decide(analysis, BY_NAME, template="log_analysis", params={"x": "1"})
    assert forced.template == "log_analysis" and forced.confidence == 1.0 and forced.params == {"x": "1"}
    none = decide(analyse("book me a flight to Lisbon", LIBRARY), BY_NAME)
    assert none.strategy == "generate_custom" and none.missing[0].kind == "template_or_llm"


def test_a_large_library_is_described_in_full_only_for_the_shortlist() -> None:
    import json
    from types import SimpleNamespace

    from harness.dispatch.llm_analyse import FULL_LISTING, _prompt

    def scaffold(n: int) -> SimpleNamespace:
        return SimpleNamespace(
            name=f"s{n}", title=f"Title {n}", description=f"does {n}", workflow_type="automation", parameters={}
        )

    small = [scaffold(n) for n in range(3)]
    assert "Other scaffolds" not in _prompt("r", small, [], ["s1"])  # a small library is listed whole
    large = [scaffold(n) for n in range(FULL_LISTING + 6)]
    prompt = _prompt("r", large, ["research-analyst"], ["s7", "s2"])
    listing = json.loads(prompt.split("Scaffolds:\n", 1)[1].split("\n\nOther scaffolds", 1)[0])
    assert [entry["name"] for entry in listing] == ["s2", "s7"]
    assert "s0: Title 0" in prompt and f"s{FULL_LISTING + 5}: Title {FULL_LISTING + 5}" in prompt
