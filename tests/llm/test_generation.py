"""LLM generation end to end: the real SDK against the fake Messages API, real containers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.testing import FakeAnthropic, ReceivedRequest, Reply

pytestmark = pytest.mark.llm

GOOD = """import os
import sys
from pathlib import Path

import harness_runtime as hr


def main() -> int:
    out = Path(os.environ.get("HARNESS_OUTPUT", "/output"))
    with hr.phase("greet"):
        hr.progress(1, 1, "writing")
        (out / "hello.txt").write_text("hello from a generated script\\n", encoding="utf-8")
        hr.artifact("hello.txt", "a greeting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""
BAD_GATE = GOOD.replace("import sys\n", "import subprocess\nimport sys\n")
FAILS = GOOD.replace("    return 0\n", "    print('cannot find the data', file=sys.stderr)\n    return 3\n")
REQUEST = "write a greeting file for the team"


def write(code: str, **kw: object) -> Reply:
    return Reply.tool_use("write_script", {"code": code, "explanation": "writes a greeting"}, **kw)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, sandbox_image: str) -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789abcdefghij")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("HARNESS_LLM_RETRIES", "1")
        # These tests script the generation calls one by one; test_llm_analysis.py covers analysis.
        monkeypatch.setenv("HARNESS_LLM_ANALYSIS", "off")
        yield server


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict | None, str]:
    code = main(["run", *args, "--json", "--yes"])
    captured = capsys.readouterr()
    try:
        report = json.loads(captured.out)
    except ValueError:
        report = None
    return code, report, captured.err


def generated(report: dict) -> tuple[Path, dict]:
    """The record's folder and the record as the store shows it (meta.json, runs.jsonl and trust merged)."""
    from harness.review.store import GeneratedStore

    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record_id = report["generation"]["id"]
    return store.folder(record_id), store.load_record(record_id).model_dump(mode="json")


def test_custom_script_end_to_end(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None, tmp_path: Path
) -> None:
    fake.add(write(GOOD, usage={"input_tokens": 900, "output_tokens": 300, "cache_creation_input_tokens": 2000}))
    code, report, err = run(capsys, REQUEST, "--strategy", "generate_custom", "--output", str(tmp_path))
    assert code == 0, err
    assert report is not None and report["dispatch_decision"]["strategy"] == "generate_custom"
    assert report["execution_result"]["status"] == "succeeded"
    assert (tmp_path / "hello.txt").read_text() == "hello from a generated script\n"
    assert report["performance_metrics"]["tokens_used"] == 3200
    assert report["performance_metrics"]["tokens"]["cache_creation_input_tokens"] == 2000
    assert report["performance_metrics"]["estimated_tokens"] > 1000  # from the prompt as sent
    assert report["performance_metrics"]["cost_usd"] > 0
    folder, meta = generated(report)
    assert meta["status"] == "pending_review" and meta["gate_passed"] is True
    assert (folder / "script.py").read_text() == GOOD and meta["prompt_hash"]
    assert meta["attempts"][0]["run_status"] == "succeeded"
    body = fake.requests[0].body
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}  # stable part first, cached
    assert "harness_runtime" in body["system"][0]["text"] and body["stream"] is True
    assert body["tools"][0]["name"] == "write_script"


def test_gate_findings_are_repaired(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None
) -> None:
    fake.add(write(BAD_GATE), write(GOOD))
    code, report, err = run(capsys, REQUEST)
    assert code == 0, err
    attempts = report["generation"]["attempts"]  # type: ignore[index]
    assert [a["gate_passed"] for a in attempts] == [False, True]
    assert any(f.startswith("HP101") for f in attempts[0]["findings"])
    second = fake.requests[1].body["messages"][0]["content"]
    assert "HP101" in second and "import subprocess" in second


def test_failed_run_is_repaired(fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None) -> None:
    fake.add(write(FAILS), write(GOOD))
    code, report, err = run(capsys, REQUEST)
    assert code == 0, err
    attempts = report["generation"]["attempts"]  # type: ignore[index]
    assert [a["stage"] for a in attempts] == ["generate", "run_repair"]
    assert attempts[0]["run_status"] == "failed" and attempts[1]["run_status"] == "succeeded"
    assert "cannot find the data" in fake.requests[1].body["messages"][0]["content"]
    # Both attempts wrote hello.txt into the run's one output folder: the repair replaced it, no conflict.
    result = report["execution_result"]  # type: ignore[index]
    assert result["outputs_partial"] is False and [d["path"] for d in result["deliverables"]] == ["hello.txt"]


NEEDS_NETWORK = """import sys

import harness_runtime as hr


def main() -> int:
    with hr.phase("fetch"):
        try:
            hr.fetch("https://api.example.com/v1/rates")
        except hr.FetchError as exc:
            print(f"cannot fetch: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""


def test_a_script_that_needs_the_network_says_how_to_grant_it(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None
) -> None:
    fake.add(write(NEEDS_NETWORK), write(GOOD))
    code, report, _ = run(capsys, REQUEST)
    assert code == 1 and report is not None
    record_id = report["generation"]["id"]
    message = report["execution_result"]["message"]
    assert f"needs network access to api.example.com: review it, then harness review approve {record_id}" in message
    assert "--allow-host api.example.com" in message
    assert len(fake.requests) == 1 and fake.pending == 1  # no rewrite was asked for: it cannot help


def test_repeated_answer_stops_early(fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add(write(BAD_GATE), write(BAD_GATE), write(GOOD))
    code, _, err = run(capsys, REQUEST)
    assert code == 1
    assert "gate refused" in err and fake.pending == 1  # the third answer was never asked for


def test_budget_exhausted_mid_loop_keeps_the_attempts(fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add(write(BAD_GATE, usage={"input_tokens": 4000, "output_tokens": 900}), write(GOOD))
    code = main(["run", REQUEST, "--budget", "6000", "--yes"])
    err = capsys.readouterr().err
    assert code == 1
    assert "token budget exhausted" in err and "--budget" in err
    folders = list(Path(os.environ["HARNESS_GENERATED_DIR"]).iterdir())
    meta = json.loads((folders[0] / "meta.json").read_text())
    assert len(meta["attempts"]) == 1 and meta["tokens"]["input_tokens"] == 4000


@pytest.mark.parametrize(
    ("replies", "needle", "exit_code"),
    [
        ([Reply.error(401)], "rejected the key (401)", 2),
        ([Reply.error(429, retry_after=0)] * 2, "rate limited by the Anthropic API (429)", 1),
        ([Reply.error(529, retry_after=0)] * 2, "overloaded (529)", 1),
        ([Reply.error(500, retry_after=0)] * 2, "failed (500)", 1),
        ([Reply.text("I would rather not write code today.")] * 3, "no code", 1),
        ([Reply.text("```python\nfunction main() { return 0; }\n```")] * 3, "not valid Python", 1),
        ([write(GOOD, stop_reason="max_tokens")] * 3, "truncated", 1),
        ([Reply.tool_use("write_script", {"script": GOOD})] * 3, "wrong shape", 1),
    ],
)
def test_llm_failures_are_one_clear_line(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], replies: list[Reply], needle: str, exit_code: int
) -> None:
    fake.add(*replies)
    code = main(["run", REQUEST, "--yes"])
    err = capsys.readouterr().err
    assert code == exit_code, err
    error_lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and "Traceback" not in err
    assert needle in error_lines[0] or needle in err


def test_api_time_out_is_one_clear_line(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_LLM_TIMEOUT_S", "0.5")
    monkeypatch.setenv("HARNESS_LLM_RETRIES", "0")
    fake.add(Reply.text("late", delay_s=2.0))
    code = main(["run", REQUEST, "--yes"])
    err = capsys.readouterr().err
    assert code == 1 and "did not answer within 0.5 s" in err


def test_the_container_never_sees_the_key(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None, tmp_path: Path
) -> None:
    snoop = GOOD.replace(
        '(out / "hello.txt").write_text("hello from a generated script\\n", encoding="utf-8")',
        '(out / "env.json").write_text(json.dumps(dict(os.environ)), encoding="utf-8")',
    ).replace("import os\n", "import json\nimport os\n")
    assert "env.json" in snoop
    fake.add(write(snoop))
    code, _, err = run(capsys, REQUEST, "--strategy", "generate_custom", "--output", str(tmp_path))
    assert code == 0, err
    seen = (tmp_path / "env.json").read_text()
    assert "sk-ant" not in seen and "ANTHROPIC" not in seen and fake.base_url not in seen


def test_customise_fills_missing_parameters(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None, tmp_path: Path
) -> None:
    data = Path(__file__).resolve().parents[2] / "examples" / "data"
    fake.add(Reply.tool_use("write_script", {"code": "pass", "parameters": {"group_by": "product"}}))
    code, report, err = run(capsys, "summarise the CSV sales files", "--input", str(data), "--output", str(tmp_path))
    assert code == 0, err
    assert report["dispatch_decision"]["strategy"] == "customise_template"  # type: ignore[index]
    assert json.loads((tmp_path / "summary.json").read_text())["group_by"] == "product"


def test_hybrid_starts_from_the_closest_scaffold(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None
) -> None:
    fake.add(write(GOOD))
    code, report, err = run(capsys, REQUEST, "--strategy", "hybrid", "--template", "archive_builder")
    assert code == 0, err
    assert report["generation"]["strategy"] == "hybrid"  # type: ignore[index]
    assert "archive_builder" in fake.requests[0].body["messages"][0]["content"]


def test_no_key_says_how_to_set_one(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", REQUEST, "--strategy", "generate_custom"])
    err = capsys.readouterr().err
    assert code == 2 and "ANTHROPIC_API_KEY" in err


def test_agent_call_from_a_real_container(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None, tmp_path: Path
) -> None:
    def answer(request: ReceivedRequest) -> Reply:
        assert "security" in request.body["system"]
        return Reply.text("Rotate the AWS key first; the pickle call is the next risk.")

    fake.handler = answer
    webapp = Path(__file__).resolve().parents[2] / "scaffolds/security_audit/example/webapp"
    code, report, err = run(
        capsys, "security audit of this code for secrets", "--input", str(webapp), "--output", str(tmp_path)
    )
    assert code == 0, err
    assert "Rotate the AWS key first" in (tmp_path / "security_report.md").read_text()
    assert report["performance_metrics"]["tokens_used"] > 0  # type: ignore[index]
    assert json.loads((tmp_path / "findings.json").read_text())["agent_review"].startswith("Rotate")


def test_generated_script_runs_again_by_id_under_the_strict_gate(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None, served: str
) -> None:
    fake.add(write(GOOD))
    code, report, err = run(capsys, REQUEST, "--strategy", "generate_custom")
    assert code == 0, err
    folder, _ = generated(report)  # type: ignore[arg-type]
    record_id = folder.name
    assert main(["exec", "--generated", record_id, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["status"] == "succeeded"
    runs = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()]
    assert again["run_id"] in [r["run_id"] for r in runs] and again["run_id"] not in (folder / "meta.json").read_text()
    assert main(["exec", "--generated", record_id, "--memory", "2g"]) == 2
    assert "runs only within the default limits" in capsys.readouterr().err
    (folder / "script.py").write_text(BAD_GATE)
    assert main(["exec", "--generated", record_id]) == 1
    assert "fails the strict gate: HP101" in capsys.readouterr().err
    assert main(["exec", "--generated", "g-000000000000"]) == 2
    assert "no generated script" in capsys.readouterr().err


def test_model_text_and_a_forged_script_reach_the_terminal_escaped(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    # The model's streamed text and its script are untrusted terminal bytes (issue 9, item 2).
    forged = GOOD.replace("    return 0\n", "    return 0  # \x1b[2K\x1b[1G    pass\n")
    fake.add(write(forged, text="thinking\x1b]0;pwned\x07 \x9b2K done"), write(GOOD))
    code = main(["run", REQUEST, "--strategy", "generate_custom", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for text in (captured.out, captured.err):
        assert not any(c in text for c in "\x1b\x9b\x07"), text
    assert "thinking\\x1b]0;pwned\\x07 \\x9b2K done" in captured.err
    assert "attempt 1 (generate): HS012@14" in captured.err  # the gate refused the forged script
    assert "return 0\n" in captured.out


def test_what_the_scaffold_cannot_do_goes_to_the_llm_named(
    fake: FakeAnthropic, capsys: pytest.CaptureFixture[str], no_leftovers: None
) -> None:
    """Offline this is refused ("png output"); with an LLM, a script from the scaffold is told the leftover."""
    data = Path(__file__).resolve().parents[2] / "examples" / "data"
    fake.add(write(GOOD))
    code, report, err = run(capsys, "summarise the sales by region as a png chart", "--input", str(data))
    assert code == 0, err
    decision = report["dispatch_decision"]  # type: ignore[index]
    assert decision["strategy"] == "hybrid" and decision["template"] == "csv_summary"
    assert "cannot do: png output" in decision["reasoning"]
    prompt = fake.requests[0].body["messages"][0]["content"]
    assert "The bundled scaffolds cannot do this part of the request; your script must:\n- png output" in prompt
