"""app.requests on the scripted backend: routing, the refusals of `harness run`, progress on one sink."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.app import requests
from harness.app.requests import RequestIn
from harness.errors import ConfigError, GateRefused, InputError, MissingInputs
from harness.events import LogEvent
from harness.progress import RequestEvent
from harness.records import RunSpec
from harness.services import Services
from harness.settings import Settings
from harness.testing import Outcome, ScriptedBackend

CSV_REQUEST = "summarise every CSV in ./data by region"
PLAN_REQUEST = "summarise every CSV by region and find the most common errors in the logs, then zip up the results"
SUMMARY = {"group_by": "region", "files": ["sales.csv"], "rows": 2, "groups": {"north": {"units": {"sum": 3}}}}


def _good() -> Outcome:
    outputs = {"summary.json": json.dumps(SUMMARY).encode(), "summary.md": b"| region |\n| north |\n"}
    return Outcome(events=(LogEvent(message="reading"),), outputs=outputs)


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sales.csv").write_text("region,units\nnorth,1\nnorth,2\n")
    return data


def _services(backend: ScriptedBackend, **settings: object) -> Services:
    return Services.from_settings(Settings.from_env(**settings), backend=backend)


def test_analyse_and_route_tell_a_single_run_from_a_plan() -> None:
    with _services(ScriptedBackend([])) as services:
        single = requests.analyse(services, CSV_REQUEST)
        several = requests.analyse(services, PLAN_REQUEST)
        assert requests.route(services, CSV_REQUEST).kind == "single"
        routed = requests.route(services, PLAN_REQUEST)
    assert single.plan is None and single.decision.template == "csv_summary"
    assert several.plan is not None and [row["phase"] for row in several.plan.phases] == [
        "csv_summary",
        "log_analysis",
        "archive_builder",
    ]
    assert routed.kind == "plan" and routed.plan is not None and routed.estimate == several.plan.estimate
    # The seed's vocabulary: the plan is the request's (hybrid) dispatch; each phase has its own strategy.
    assert several.plan.dispatch == "hybrid"
    assert [row["strategy"] for row in several.plan.phases] == ["use_template"] * 3


def test_what_can_be_refused_before_any_llm_call_is(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown strategy"):
        requests.check(RequestIn(request="x", strategy="guess"))
    with pytest.raises(InputError, match="does not exist"):
        requests.check(RequestIn(request="x", inputs=(tmp_path / "nope",)))
    requests.check(RequestIn(request="x", strategy="hybrid", inputs=(tmp_path,)))


def test_a_run_streams_every_stage_to_one_sink(tmp_path: Path) -> None:
    backend = ScriptedBackend([_good()])
    seen: list[RequestEvent] = []
    req = RequestIn(
        request=CSV_REQUEST, template="csv_summary", params={"group_by": "region"}, inputs=(_data(tmp_path),)
    )
    with _services(backend) as services:
        done = requests.run(services, req, sink=seen.append, confirm=lambda prepared: prepared.gate_passed)
        row = services.history.recent(1)[0]
    assert done.outcome == "ran" and done.report is not None
    assert done.report.execution_result.status == "succeeded", done.report.execution_result.message
    kinds = [e.kind for e in seen]
    assert kinds[:3] == ["analysed", "decided", "vetted"] and kinds[-1] == "finished"
    assert [e.event.kind for e in seen if e.kind == "run"] == ["run_started", "log", "run_finished"]
    assert (row["run_id"], row["status"]) == (done.run_id, "succeeded")
    assert (done.run_dir / "report.json").is_file()


def test_a_missing_parameter_refuses_the_run_and_names_it() -> None:
    backend = ScriptedBackend([])
    req = RequestIn(request="summarise the csv files", template="csv_summary")
    with _services(backend) as services, pytest.raises(MissingInputs, match="missing parameter group_by") as caught:
        requests.run(services, req)
    assert caught.value.name == "group_by" and backend.specs == []
    first = caught.value.missing[0]
    assert (first.kind, first.name, first.type, first.example) == ("param", "group_by", "str", "region")


def test_a_dry_run_and_a_declined_run_run_nothing(tmp_path: Path) -> None:
    backend = ScriptedBackend([])
    base = RequestIn(request=CSV_REQUEST, template="csv_summary", params={"group_by": "region"})
    with _services(backend) as services:
        dry = requests.run(services, base.model_copy(update={"dry_run": True}))
        declined = requests.run(services, base, confirm=lambda prepared: False)
    assert (dry.outcome, declined.outcome) == ("dry_run", "declined")
    assert dry.report is None and declined.report is None and backend.specs == []


def _refused_scaffold(root: Path) -> None:
    folder = root / "shell_out"
    folder.mkdir(parents=True)
    (folder / "scaffold.toml").write_text(
        'name = "shell_out"\ntitle = "Shell out"\ndescription = "runs ls"\nworkflow_type = "automation"\n'
        'keywords = ["shell"]\n\n[[examples]]\nrequest = "list the files with a shell"\n'
    )
    (folder / "template.py.j2").write_text("import subprocess\n\nsubprocess.run(['ls'], check=True)\n")


def test_a_refused_gate_still_writes_the_report_then_says_why(tmp_path: Path) -> None:
    _refused_scaffold(tmp_path / "scaffolds")
    backend = ScriptedBackend([])
    with _services(backend, scaffolds_dir=tmp_path / "scaffolds") as services:
        with pytest.raises(GateRefused) as caught:
            requests.run(services, RequestIn(request="list the files with a shell", template="shell_out"))
        report = json.loads((services.settings.runs_dir / caught.value.id / "report.json").read_text())
    assert caught.value.findings and backend.specs == []
    assert report["execution_result"]["status"] == "gate_failed"


def test_a_plan_reports_each_phase_and_ends_with_its_status(tmp_path: Path) -> None:
    def play(spec: RunSpec) -> Outcome:
        return Outcome(exit_code=1, stderr="nothing to do here\n")

    seen: list[RequestEvent] = []
    with _services(ScriptedBackend(play)) as services:
        routed = requests.route(services, PLAN_REQUEST)
        assert routed.plan is not None
        done = requests.run_plan(
            services, routed.plan, RequestIn(request=PLAN_REQUEST, output_dir=tmp_path / "plan"), sink=seen.append
        )
    assert done.output_dir == tmp_path / "plan" and (done.output_dir / done.report.report_file).is_file()
    changed = {(e.phase, e.state) for e in seen if e.kind == "phase_changed"}
    assert {phase for phase, _ in changed} == {"csv_summary", "log_analysis", "archive_builder"}
    failed = [e for e in seen if e.kind == "phase_changed" and e.state == "failed"]
    assert failed and all(e.run_id and "nothing to do here" in e.message for e in failed)
    assert seen[-1].kind == "finished" and seen[-1].status == done.report.status != "succeeded"
    assert done.report.dispatch == "hybrid"
    assert {p.name: p.strategy for p in done.report.phases if p.status != "skipped"} == {
        p.name: "use_template" for p in done.report.phases if p.status != "skipped"
    }


def test_the_library_and_the_app_refuse_the_same_requests() -> None:
    from harness.errors import RunError
    from harness.generation.generate import Generation
    from harness.pipeline import Harness, check_runnable
    from harness.review.store import GeneratedRecord

    with _services(ScriptedBackend([])) as services:
        with pytest.raises(MissingInputs, match="missing parameter group_by"):
            Harness(services=services).run_request("summarise the csv files", template="csv_summary")
        prepared = requests.prepare(services, RequestIn(request=CSV_REQUEST, template="csv_summary"))
        record = GeneratedRecord(id="g-0123456789ab", created_at="now", request="r", strategy="s", model="m")
        prepared.generation = Generation(record=record, why_stopped="the token budget ran out")
        prepared.script = None
        with pytest.raises(RunError, match="no usable script: the token budget ran out") as caught:
            requests.ensure_runnable(services, prepared)
        assert caught.value.run_id == prepared.run_id
        assert "g-0123456789ab" in caught.value.hint
        with pytest.raises(RunError):
            check_runnable(prepared, services.settings.generated_dir)


def test_a_cancel_before_the_run_stops_it_and_starts_no_container(tmp_path: Path) -> None:
    from harness.app.cancel import CancelToken
    from harness.errors import Cancelled

    backend = ScriptedBackend([_good()])
    token = CancelToken()
    seen: list[str] = []

    def sink(event: RequestEvent) -> None:
        seen.append(event.kind)
        if event.kind == "drafted":
            token.set()  # after vetting, before the container

    req = RequestIn(request=CSV_REQUEST, template="csv_summary", params={"group_by": "region"})
    with _services(backend) as services, pytest.raises(Cancelled):
        requests.run(services, req, sink=sink, cancel=token, run_id="0123456789ab")
    assert backend.specs == [] and "run" not in seen and seen[-1] == "drafted"


def test_a_cancelled_prepare_lets_go_at_once_and_closes_the_late_result() -> None:
    import threading

    from harness.app.cancel import CancelToken
    from harness.app.requests import _cancellable
    from harness.errors import Cancelled

    release, closed = threading.Event(), threading.Event()

    class _Late:
        def close(self) -> None:
            closed.set()

    def work() -> object:
        release.wait(30)  # an LLM call that has not answered yet
        return _Late()

    token = CancelToken()
    threading.Timer(0.05, token.set).start()
    with pytest.raises(Cancelled):
        _cancellable(work, token)  # type: ignore[arg-type]
    assert not closed.is_set()
    release.set()  # the model answers after all: its result is closed, not used
    assert closed.wait(10)
