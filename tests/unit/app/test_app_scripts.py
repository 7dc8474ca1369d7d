"""app.scripts.exec_script on the scripted backend: every rule of `harness exec` with no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.app.cancel import CancelToken
from harness.app.scripts import LimitOverrides, ScriptRun, exec_script
from harness.errors import ConfigError, GateRefused, InputError, NotFound, NotReviewed
from harness.events import Event, FetchRequestEvent, LogEvent, ProgressEvent
from harness.records import RunSpec
from harness.review.store import GeneratedRecord, GeneratedStore
from harness.services import Services
from harness.settings import Settings
from harness.testing import Outcome, ScriptedBackend

SCRIPT = "print('hi')\n"


def _services(backend: ScriptedBackend) -> Services:
    return Services.from_settings(Settings.from_env(), backend=backend)


def _pending(store: GeneratedStore, script: str = SCRIPT) -> GeneratedRecord:
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="say hi", strategy="generate_custom", model="m"
    )
    store.save(record, script)
    return record


def test_a_run_keeps_its_folder_and_streams_its_events(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        [Outcome(events=(LogEvent(message="hello"), ProgressEvent(done=1, total=2)), outputs={"a.txt": b"A"})]
    )
    seen: list[Event] = []
    with _services(backend) as services:
        outcome = exec_script(services, ScriptRun(source=SCRIPT, name="hi.py", env={"X": "1"}), sink=seen.append)
    assert outcome.result.ok and outcome.result.run_id == outcome.run_id
    assert [e.kind for e in seen] == ["run_started", "log", "progress", "run_finished"]
    spec = backend.specs[0]
    assert (spec.script, spec.name, spec.env, spec.limits) == (SCRIPT, "hi.py", {"X": "1"}, None)
    assert spec.output_dir == outcome.run_dir / "output" and (outcome.run_dir / "output" / "a.txt").read_bytes() == b"A"
    stored = json.loads((outcome.run_dir / "result.json").read_text())
    assert stored["status"] == "succeeded" and "events" not in stored
    logged = [json.loads(line)["kind"] for line in (outcome.run_dir / "events.jsonl").read_text().splitlines()]
    assert logged == ["run_started", "log", "progress", "run_finished"]
    assert outcome.events_dropped == 0 and outcome.egress == ()


def test_a_name_that_is_not_python_runs_as_main_py() -> None:
    backend = ScriptedBackend([Outcome()])
    with _services(backend) as services:
        exec_script(services, ScriptRun(source=SCRIPT, name="script.txt", run_id="0123456789ab"))
    assert backend.specs[0].name == "main.py" and backend.specs[0].run_id == "0123456789ab"


def test_checks_come_before_any_run(tmp_path: Path) -> None:
    backend = ScriptedBackend([])
    with _services(backend) as services:
        with pytest.raises(InputError, match="does not exist"):
            exec_script(services, ScriptRun(source=SCRIPT, inputs=(tmp_path / "nope",)))
        with pytest.raises(ConfigError, match="invalid limit memory"):
            exec_script(services, ScriptRun(source=SCRIPT, limits=LimitOverrides(memory="lots")))
        with pytest.raises(InputError, match="no script given"):
            exec_script(services, ScriptRun())
        with pytest.raises(NotFound):
            exec_script(services, ScriptRun(generated_id="g-0123456789ab"))
    assert backend.specs == []


def test_limits_override_the_settings_for_this_run_only() -> None:
    backend = ScriptedBackend([Outcome()])
    with _services(backend) as services:
        exec_script(services, ScriptRun(source=SCRIPT, limits=LimitOverrides(timeout_s=5, memory="256m")))
        assert services.settings.limits.timeout_s == 60
    limits = backend.specs[0].limits
    assert limits is not None and (limits.timeout_s, limits.memory) == (5, 256 * 1024 * 1024)


def test_allowed_hosts_reach_the_broker_and_the_outcome_counts_them() -> None:
    fetch = FetchRequestEvent(id="f1", url="https://blocked.invalid/x")
    backend = ScriptedBackend([Outcome(events=(fetch,))])
    with _services(backend) as services:
        outcome = exec_script(services, ScriptRun(source=SCRIPT, allow_hosts=("Example.COM",)))
    assert backend.specs[0].egress == ("example.com",)
    refusal = [e for e in outcome.result.events if e.kind == "fetch_reply"]
    assert refusal and not refusal[0].ok  # a host outside the grant is refused by the broker
    assert outcome.egress and outcome.egress[0]["host"] == "blocked.invalid"


def test_a_pending_generated_script_runs_without_network_and_its_run_is_recorded() -> None:
    backend = ScriptedBackend([Outcome()])
    with _services(backend) as services:
        record = _pending(services.generated)
        with pytest.raises(NotReviewed, match="gets no network"):
            exec_script(services, ScriptRun(generated_id=record.id, allow_hosts=("example.com",)))
        with pytest.raises(NotReviewed, match="default limits"):
            exec_script(services, ScriptRun(generated_id=record.id, limits=LimitOverrides(memory="2g")))
        outcome = exec_script(services, ScriptRun(generated_id=record.id, source="ignored"))
        assert backend.specs[0].script == SCRIPT and backend.specs[0].egress == ()
        assert [r["run_id"] for r in services.generated.runs(record.id)] == [outcome.run_id]
        assert outcome.generated_id == record.id


def test_an_approved_grant_is_narrowed_never_widened() -> None:
    backend = ScriptedBackend([Outcome(), Outcome()])
    with _services(backend) as services:
        record = _pending(services.generated)
        services.generated.transition(
            record.id, "approved", reviewer="r", grant_hosts=("a.example.com", "b.example.com")
        )
        exec_script(services, ScriptRun(generated_id=record.id))
        exec_script(services, ScriptRun(generated_id=record.id, allow_hosts=("b.example.com",)))
        with pytest.raises(NotReviewed, match="not approved with egress"):
            exec_script(services, ScriptRun(generated_id=record.id, allow_hosts=("c.example.com",)))
    assert [s.egress for s in backend.specs] == [("a.example.com", "b.example.com"), ("b.example.com",)]


def test_a_generated_script_must_pass_the_strict_gate() -> None:
    with _services(ScriptedBackend([])) as services:
        record = _pending(services.generated, "import subprocess\nsubprocess.run(['ls'])\n")
        with pytest.raises(GateRefused) as caught:
            exec_script(services, ScriptRun(generated_id=record.id))
    assert caught.value.id == record.id and caught.value.findings


def test_cancelling_during_the_run_stops_it() -> None:
    token = CancelToken()

    def play(spec: RunSpec) -> Outcome:
        token.set()  # as an HTTP cancel arriving while the container runs
        return Outcome(events=(LogEvent(message="never shown"),), exit_code=0)

    seen: list[Event] = []
    with _services(ScriptedBackend(play)) as services:
        outcome = exec_script(services, ScriptRun(source=SCRIPT), sink=seen.append, cancel=token)
    assert outcome.result.status == "cancelled" and not outcome.result.ok
    assert "log" not in [e.kind for e in seen]
    assert json.loads((outcome.run_dir / "result.json").read_text())["status"] == "cancelled"


def test_cancelled_before_it_starts_nothing_runs() -> None:
    token = CancelToken()
    token.set()
    backend = ScriptedBackend([])
    with _services(backend) as services:
        outcome = exec_script(services, ScriptRun(source=SCRIPT), cancel=token)
    assert backend.specs == [] and outcome.result.status == "cancelled"
    assert (outcome.run_dir / "result.json").is_file()


def test_cancel_token_callbacks_run_once_and_can_be_removed() -> None:
    token = CancelToken()
    calls: list[str] = []
    remove = token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    remove()
    token.set()
    token.set()
    token.on_cancel(lambda: calls.append("late"))
    assert calls == ["b", "late"] and token.is_set() and token.wait(0)


def test_an_interrupted_run_ends_interrupted_with_its_outputs_kept() -> None:
    from harness.app.scripts import interrupt

    opened: list[Services] = []

    def script(spec: RunSpec) -> Outcome:
        # Ctrl-C while the script runs: the CLI's helper thread calls app.scripts.interrupt.
        assert interrupt(opened[0], spec.run_id)
        return Outcome(events=(LogEvent(message="never played"),), outputs={"part.txt": b"half"})

    backend = ScriptedBackend(script)
    with _services(backend) as services:
        opened.append(services)
        assert not interrupt(services, "0123456789ab")  # nothing of that id is running
        outcome = exec_script(services, ScriptRun(source=SCRIPT))
    result = outcome.result
    assert result.status == "interrupted" and result.outputs_partial
    assert "kept (partial)" in result.message
    assert (outcome.run_dir / "output" / "part.txt").read_bytes() == b"half"
    assert all(e.kind != "log" for e in result.events)
    assert json.loads((outcome.run_dir / "provenance.json").read_text())["kind"] == "exec"
