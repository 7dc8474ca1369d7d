"""The LLM's second opinion on a request: asked when the heuristic is unsure, merged where surer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness.cli import main
from harness.pipeline import Harness
from harness.settings import Settings
from harness.testing import FakeAnthropic, Reply

pytestmark = pytest.mark.llm

# Vague enough that the keyword heuristic is unsure of both type and scaffold.
VAGUE = "tally the regional numbers in the quarterly spreadsheets"
CLEAR = "summarise every CSV in ./data by region"


def verdict(**changes: Any) -> Reply:
    payload: dict[str, Any] = {
        "workflow_type": "automation",
        "workflow_confidence": 0.9,
        "complexity": "simple",
        "roles": [],
        "scaffold": "csv_summary",
        "scaffold_confidence": 0.85,
        "parameters": {"group_by": "region"},
        "reasoning": "spreadsheets grouped by region: a CSV summary",
    }
    payload.update(changes)
    return Reply.tool_use("analyse_request", payload, usage={"input_tokens": 900, "output_tokens": 80})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789abcdefghij")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("HARNESS_LLM_RETRIES", "0")
        yield server


def harness(**overrides: Any) -> Harness:
    return Harness(Settings.from_env(**overrides))


def test_heuristic_alone_is_unsure_of_the_vague_request() -> None:
    analysis, decision = harness().analyse(VAGUE)
    assert analysis.candidates[0].confidence < 0.45
    assert decision.strategy == "generate_custom" and decision.missing
    assert analysis.llm == "no LLM configured"


def test_unsure_heuristic_asks_and_takes_the_surer_answer(fake: FakeAnthropic) -> None:
    fake.add(verdict(roles=[{"name": "research-analyst", "confidence": 0.2}]))
    analysis, decision = harness().analyse(VAGUE)

    assert len(fake.requests) == 1
    body = fake.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "analyse_request"}
    assert [t["name"] for t in body["tools"]] == ["analyse_request"]
    assert "csv_summary" in body["messages"][0]["content"] and VAGUE in body["messages"][0]["content"]

    assert analysis.workflow_type == "automation" and analysis.workflow_confidence == 0.9
    assert analysis.candidates[0].name == "csv_summary" and analysis.candidates[0].confidence == 0.85
    assert "<llm>" in analysis.candidates[0].matched_terms
    assert analysis.stated_params["group_by"] == "region"
    assert analysis.role_confidence == {"research-analyst": 0.2}
    assert "scaffold csv_summary" in analysis.llm and "workflow type" in analysis.llm
    assert any(f.startswith("LLM: automation (0.90)") for f in analysis.workflow_features)
    assert analysis.estimate.tokens == 0  # a filled scaffold needs no generation
    assert decision.strategy == "use_template" and decision.template == "csv_summary"
    assert decision.params["group_by"] == "region"
    assert decision.reasoning == "the LLM's analysis picks csv_summary with confidence 0.85"


def test_confident_heuristic_makes_no_call(fake: FakeAnthropic) -> None:
    analysis, decision = harness().analyse(CLEAR)
    assert fake.requests == []
    assert analysis.llm == "not asked: the heuristic analysis is confident"
    assert decision.strategy == "use_template" and decision.template == "csv_summary"


def test_always_asks_but_keeps_the_surer_heuristic(fake: FakeAnthropic) -> None:
    fake.add(
        verdict(workflow_type="research", workflow_confidence=0.3, scaffold="log_analysis", scaffold_confidence=0.1)
    )
    analysis, decision = harness(llm_analysis="always").analyse(CLEAR)
    assert len(fake.requests) == 1
    assert analysis.workflow_type == "automation"
    assert analysis.candidates[0].name == "csv_summary"
    assert analysis.llm == "LLM analysis was no more confident"
    assert decision.template == "csv_summary"


def test_off_never_asks(fake: FakeAnthropic) -> None:
    analysis, _ = harness(llm_analysis="off").analyse(VAGUE)
    assert fake.requests == []
    assert "turned off" in analysis.llm


def test_forced_template_or_strategy_is_not_second_guessed(fake: FakeAnthropic) -> None:
    h = harness()
    prepared = h.prepare(VAGUE, template="csv_summary", params={"group_by": "region"})
    prepared.close()
    assert fake.requests == []
    assert prepared.analysis.llm.startswith("not asked: the scaffold or strategy was chosen explicitly")


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply.text("It is probably about spreadsheets."), "did not call analyse_request"),
        (verdict(workflow_type="banana"), "wrong shape (workflow_type"),
        (verdict(workflow_confidence=7), "wrong shape (workflow_confidence"),
        (Reply.tool_use("write_script", {"code": "print(1)"}), "unknown tool 'write_script'"),
        (Reply.tool_use("analyse_request", {}, stop_reason="max_tokens"), "cut off"),
        (Reply.error(500, "boom"), "LLM analysis failed (the Anthropic API failed (500)"),
        (Reply.error(401), "LLM analysis failed (the Anthropic API rejected the key"),
    ],
)
def test_nonsense_or_failure_leaves_the_heuristic_standing(fake: FakeAnthropic, reply: Reply, why: str) -> None:
    fake.add(reply)
    before, heuristic = harness(llm_analysis="off").analyse(VAGUE)
    analysis, decision = harness().analyse(VAGUE)
    assert why in analysis.llm and "the heuristic analysis stands" in analysis.llm
    assert analysis.workflow_type == before.workflow_type
    assert analysis.candidates == before.candidates
    assert decision == heuristic


def test_invented_names_are_dropped_with_a_note(fake: FakeAnthropic) -> None:
    fake.add(
        verdict(
            scaffold="spreadsheet_wizard",
            roles=[{"name": "wizard", "confidence": 0.9}, {"name": "research-analyst", "confidence": 0.6}],
        )
    )
    analysis, decision = harness().analyse(VAGUE)
    assert "unknown scaffold 'spreadsheet_wizard' ignored" in analysis.llm
    assert "unknown role 'wizard' dropped" in analysis.llm
    assert "wizard" not in analysis.role_confidence and analysis.role_confidence["research-analyst"] == 0.6
    assert analysis.candidates[0].name != "spreadsheet_wizard"
    assert decision.strategy != "use_template"


def test_unknown_parameters_are_dropped(fake: FakeAnthropic) -> None:
    fake.add(verdict(parameters={"group_by": "region", "colour": "blue"}))
    analysis, _ = harness().analyse(VAGUE)
    assert "colour" not in analysis.stated_params
    assert "unknown parameter 'colour' dropped" in analysis.llm


def test_history_of_failures_discounts_the_llms_pick(fake: FakeAnthropic) -> None:
    h = harness()
    for i in range(6):
        h.history.started(f"run{i}", VAGUE, strategy="use_template", template="csv_summary")
        h.history.finished(f"run{i}", "failed", duration_s=1.0)
    fake.add(verdict())
    analysis, decision = h.analyse(VAGUE)
    top = next(c for c in analysis.candidates if c.name == "csv_summary")
    assert top.confidence < 0.45
    assert decision.template != "csv_summary" or decision.strategy != "use_template"


def test_prepare_charges_the_analysis_to_the_requests_budget(fake: FakeAnthropic) -> None:
    fake.add(verdict())
    prepared = harness().prepare(VAGUE, budget=5000)
    prepared.close()
    assert prepared.budget is not None and prepared.budget.used.total == 980
    assert prepared.analysis.estimate.token_budget == 5000 and prepared.analysis.estimate.coordination_s == 1.0
    assert prepared.decision.template == "csv_summary"


def test_analyze_command_shows_the_llms_part(fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add(verdict(roles=[{"name": "research-analyst", "confidence": 0.4}]))
    assert main(["analyze", VAGUE, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["analysis"]["llm"].startswith("LLM analysis used for workflow type")
    assert payload["analysis"]["role_confidence"] == {"research-analyst": 0.4}
    assert payload["decision"]["template"] == "csv_summary"

    fake.add(verdict())
    assert main(["analyze", VAGUE]) == 0
    out = capsys.readouterr().out
    assert "LLM: LLM analysis used for" in out and "roles:" not in out


def test_run_asks_once_and_charges_the_request(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], sandbox_image: str, no_leftovers: None
) -> None:
    from harness.generation.scaffolds import scaffolds_root

    fake.add(verdict())
    sales = scaffolds_root() / "csv_summary" / "example" / "sales"
    assert main(["run", VAGUE, "--input", str(sales), "--json", "--yes"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(fake.requests) == 1  # not once more while checking whether the request is a plan
    assert report["dispatch_decision"]["template"] == "csv_summary"
    assert report["performance_metrics"]["tokens_used"] == 980
    assert report["workflow_analysis"]["llm"].startswith("LLM analysis used for")


def test_a_scaffold_that_asks_agents_counts_their_tokens_when_an_llm_is_configured(fake: FakeAnthropic) -> None:
    request = "audit this repository for hard-coded secrets"
    offline, _ = harness(llm_analysis="off").analyse(request, ask_llm=False)
    assert offline.estimate.tokens == 0
    analysis, decision = harness().analyse(request)
    assert decision.template == "security_audit" and fake.requests == []  # confident: no analysis call
    assert analysis.estimate.tokens == 1500 + 1200  # the prompt, and the role's answer size from roles.toml
    assert "up to 1 agent call(s) of ~2700 tokens" in analysis.estimate.basis
    assert analysis.role_confidence["security-specialist"] >= decision.confidence
