"""app.rerun on the scripted backend: what a rerun repeats, what it refuses, and that review still decides."""

from __future__ import annotations

import json

import pytest

from harness.app.rerun import RerunIn, load_provenance, rerun
from harness.app.scripts import ScriptRun, exec_script
from harness.errors import InvalidInput, NotReviewed, Tampered
from harness.provenance import REDACTED, Provenance, sha256_text
from harness.review.store import GeneratedRecord
from harness.services import Services
from harness.settings import Settings
from harness.testing import Outcome, ScriptedBackend

GENERATED = "print('generated')\n"


def _services(backend: ScriptedBackend) -> Services:
    return Services.from_settings(Settings.from_env(), backend=backend)


def _report(services: Services, run_id: str, provenance: Provenance | None) -> None:
    """A request run's report.json as the pipeline writes it (only what a rerun reads matters here)."""
    folder = services.runs.create(run_id)
    report = {
        "schema_version": 2 if provenance else 1,
        "run_id": run_id,
        "request": "say something",
        "execution_result": {"status": "succeeded"},
        "provenance": json.loads(provenance.model_dump_json()) if provenance else None,
    }
    folder.write_text("report.json", json.dumps(report))


def _generated(services: Services) -> GeneratedRecord:
    store = services.generated
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="say something", strategy="generate_custom", model="m"
    )
    store.save(record, GENERATED)
    return record


def test_a_generated_run_is_rerun_as_its_reviewed_bytes_through_the_review_policy() -> None:
    backend = ScriptedBackend([Outcome()])
    with _services(backend) as services:
        record = _generated(services)
        made = Provenance(
            kind="run",
            harness_version="0.1.0",
            request="say something",
            strategy="generate_custom",
            generated_id=record.id,
            script_sha256=sha256_text(GENERATED),
            limit_overrides={"memory": "2g"},
        )
        _report(services, "0123456789ab", made)
        # Unreviewed: no raised limits, whatever the original run had. Nothing runs.
        with pytest.raises(NotReviewed, match="default limits"):
            rerun(services, RerunIn(of="0123456789ab"))
        assert backend.specs == []
        _report(services, "0123456789ab", made.model_copy(update={"limit_overrides": {}}))
        outcome = rerun(services, RerunIn(of="0123456789ab"))
    assert backend.specs[0].script == GENERATED and backend.specs[0].egress == ()
    assert outcome.kind == "run" and outcome.status == "succeeded" and outcome.warnings == ()
    assert outcome.report is not None and outcome.report.provenance is not None
    assert outcome.report.provenance.rerun_of == "0123456789ab"
    assert outcome.report.quality_metrics is not None and outcome.report.quality_metrics.gate_policy == "strict"


def test_the_reviewed_bytes_run_and_a_difference_is_warned() -> None:
    backend = ScriptedBackend([Outcome()])
    told: list[str] = []
    with _services(backend) as services:
        record = _generated(services)
        made = Provenance(
            kind="run",
            harness_version="0.1.0",
            request="say something",
            strategy="generate_custom",
            generated_id=record.id,
            script_sha256=sha256_text("print('repaired later')\n"),
        )
        _report(services, "0123456789ab", made)
        outcome = rerun(services, RerunIn(of="0123456789ab"), warn=told.append)
    assert backend.specs[0].script == GENERATED
    assert told == list(outcome.warnings) and "other bytes than ran" in told[0]


def test_secret_parameters_must_be_given_again_and_old_reports_are_refused() -> None:
    backend = ScriptedBackend([])
    with _services(backend) as services:
        made = Provenance(
            kind="run",
            harness_version="0.1.0",
            request="summarise",
            strategy="use_template",
            template="csv_summary",
            params_used={"group_by": "region", "api_token": REDACTED},
        )
        _report(services, "0123456789ab", made)
        with pytest.raises(InvalidInput, match="never recorded: api_token"):
            rerun(services, RerunIn(of="0123456789ab"))
        _report(services, "0123456789ac", None)
        with pytest.raises(InvalidInput, match="no recorded provenance"):
            load_provenance(services, "0123456789ac")
    assert backend.specs == []


def test_an_exec_script_changed_after_its_run_is_refused() -> None:
    backend = ScriptedBackend([Outcome()])
    with _services(backend) as services:
        first = exec_script(services, ScriptRun(source="print(1)\n", run_id="0123456789ab"))
        (first.run_dir / "script.py").write_text("print('not what ran')\n")
        with pytest.raises(Tampered, match="not the script that ran"):
            rerun(services, RerunIn(of="0123456789ab"))
    assert len(backend.specs) == 1
