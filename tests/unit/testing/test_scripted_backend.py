"""The scripted backend drives the whole pipeline (prepare, execute, report, history) with no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.events import AgentRequestEvent, FetchRequestEvent, LogEvent, OutputEvent, ProgressEvent, ResultEvent
from harness.execution.backend import AgentDeclined
from harness.execution.egress import NO_GRANT
from harness.pipeline import Harness
from harness.records import RunSpec
from harness.settings import Settings
from harness.testing import Outcome, ScriptedBackend

CSV_REQUEST = "summarise every CSV in ./data by region"
GOOD_SUMMARY = {"group_by": "region", "files": ["sales.csv"], "rows": 2, "groups": {"north": {"units": {"sum": 3}}}}


def _outcome(summary: dict[str, object] | None = None, **update: object) -> Outcome:
    outputs = {
        "summary.json": json.dumps(summary or GOOD_SUMMARY).encode(),
        "summary.md": b"| region | units |\n| north | 3 |\n",
    }
    return Outcome(
        events=(LogEvent(message="reading"), ProgressEvent(done=1, total=1), ResultEvent(data={"groups": 1})),
        outputs=outputs,
        **update,  # type: ignore[arg-type]
    )


def _harness(backend: ScriptedBackend) -> Harness:
    return Harness(Settings.from_env(), backend_factory=lambda _settings: backend)


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sales.csv").write_text("region,units\nnorth,1\nnorth,2\n")
    return data


def test_a_passing_run_goes_end_to_end(tmp_path: Path) -> None:
    backend = ScriptedBackend([_outcome()])
    harness = _harness(backend)
    out = tmp_path / "out"
    seen: list[str] = []
    report = harness.run_request(
        CSV_REQUEST,
        template="csv_summary",
        params={"group_by": "region"},
        inputs=[_data(tmp_path)],
        output_dir=out,
        on_event=lambda e: seen.append(e.kind),
    )
    result = report.execution_result
    assert result.status == "succeeded", result.message
    assert result.result == {"groups": 1}
    assert {d.path for d in result.deliverables} == {"summary.json", "summary.md"}
    assert json.loads((out / "summary.json").read_text()) == GOOD_SUMMARY
    assert report.quality_metrics is not None and report.quality_metrics.assertions
    assert all(a.passed for a in report.quality_metrics.assertions)
    assert report.policy is not None and report.policy.runtime == "scripted"
    assert seen == ["run_started", "log", "progress", "result", "run_finished"]
    # The run folder's log carries the same sequence, numbered by the reader.
    folder = harness.settings.runs_dir / report.run_id
    logged = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in logged] == seen
    assert [e["seq"] for e in logged] == sorted(e["seq"] for e in logged)
    assert (folder / "script.py").read_text() == backend.specs[0].script
    row = harness.history.recent(limit=1)[0]
    assert (row["run_id"], row["status"]) == (report.run_id, "succeeded")


def test_outputs_that_break_a_scaffold_assertion_fail_the_run(tmp_path: Path) -> None:
    # "Nothing matched" is an answer; a summary without its row count is not.
    empty = {k: v for k, v in GOOD_SUMMARY.items() if k != "rows"}
    report = _harness(ScriptedBackend([_outcome(empty)])).run_request(
        CSV_REQUEST, template="csv_summary", params={"group_by": "region"}, inputs=[_data(tmp_path)]
    )
    assert report.execution_result.status == "failed"
    assert "scaffold assertion failed" in report.execution_result.message
    assert report.quality_metrics is not None
    assert not all(a.passed for a in report.quality_metrics.assertions)


def test_a_failed_run_reports_the_last_stderr_line(tmp_path: Path) -> None:
    crash = Outcome(stderr="Traceback (most recent call last):\nKeyError: 'region'\n", exit_code=1)
    harness = _harness(ScriptedBackend([crash]))
    report = harness.run_request(
        CSV_REQUEST, template="csv_summary", params={"group_by": "region"}, inputs=[_data(tmp_path)]
    )
    result = report.execution_result
    assert (result.status, result.exit_code) == ("failed", 1)
    assert result.message == "exited with code 1: KeyError: 'region'"
    assert harness.history.recent(limit=1)[0]["status"] == "failed"


def test_an_output_conflict_is_skipped_in_merge_mode_and_refused_in_new_mode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.md").write_text("mine\n")
    # Harness closes the backend its factory made after each run, as it does a Docker one: one each.
    harness = Harness(Settings.from_env(), backend_factory=lambda _settings: ScriptedBackend([_outcome()]))
    report = harness.run_request(
        CSV_REQUEST,
        template="csv_summary",
        params={"group_by": "region"},
        inputs=[_data(tmp_path)],
        output_dir=out,
        output_mode="merge",
    )
    assert report.execution_result.output_conflicts == ("summary.md",)
    assert report.execution_result.outputs_partial
    assert (out / "summary.md").read_text() == "mine\n"  # never overwritten
    with pytest.raises(InputError, match="not empty"):
        harness.run_request(
            CSV_REQUEST,
            template="csv_summary",
            params={"group_by": "region"},
            inputs=[tmp_path / "data"],
            output_dir=out,
        )


def test_execute_takes_a_backend_directly(tmp_path: Path) -> None:
    harness = Harness(Settings.from_env())
    prepared = harness.prepare(CSV_REQUEST, template="csv_summary", params={"group_by": "region"})
    report = harness.execute(prepared, inputs=[_data(tmp_path)], backend=ScriptedBackend(lambda spec: _outcome()))
    assert report.execution_result.status == "succeeded"


def test_requests_to_the_host_go_through_the_handlers(tmp_path: Path) -> None:
    asked: list[str] = []

    def agent(request: AgentRequestEvent) -> str:
        asked.append(request.prompt)
        if request.role == "nobody":
            raise AgentDeclined("unknown role")
        return "fine"

    outcome = Outcome(
        events=(
            AgentRequestEvent(id="a1", role="analyst", prompt="how?"),
            AgentRequestEvent(id="a2", role="nobody", prompt="who?"),
            FetchRequestEvent(id="f1", url="https://example.org/x"),
            OutputEvent(text="plain line"),
        )
    )
    backend = ScriptedBackend([outcome])
    result = backend.run(RunSpec(script="pass"), on_agent=agent)
    kinds = [e.kind for e in result.events]
    assert kinds == [
        "run_started",
        "agent_request",
        "agent_reply",
        "agent_request",
        "agent_reply",
        "fetch_request",
        "fetch_reply",
        "output",
        "run_finished",
    ]
    replies = [e for e in result.events if e.kind in ("agent_reply", "fetch_reply")]
    assert [(r.ok, r.error) for r in replies] == [(True, ""), (False, "unknown role"), (False, NO_GRANT)]
    assert asked == ["how?", "who?"]
    assert result.stdout_tail.strip().endswith("plain line")
    assert [e.seq for e in result.events] == list(range(1, len(result.events) + 1))


def test_a_script_cannot_print_a_host_event_and_outcomes_run_out() -> None:
    from harness.events import RunFinished

    forged = Outcome(events=(RunFinished(run_id="x", status="succeeded", exit_code=0, duration_s=0),), exit_code=3)
    backend = ScriptedBackend([forged])
    result = backend.run(RunSpec(script="pass"))
    assert [e.kind for e in result.events] == ["run_started", "unknown", "run_finished"]
    assert result.status == "failed"
    with pytest.raises(RuntimeError, match="no outcome left"):
        backend.run(RunSpec(script="pass"))
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.run(RunSpec(script="pass"))


def test_a_forced_verdict_is_reported_as_given() -> None:
    backend = ScriptedBackend(lambda spec: Outcome(status="timed_out", message="killed after the 1 s timeout"))
    result = backend.run(RunSpec(script="pass"))
    assert (result.status, result.message) == ("timed_out", "killed after the 1 s timeout")
    assert backend.specs[0].script == "pass"
