"""app.review: the decisions a reviewer makes, through the same store and audit log as the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.app import review
from harness.errors import ConfigError, Conflict, InvalidInput, NotReviewed
from harness.review.store import GeneratedRecord
from harness.services import Services
from harness.settings import Settings

SCRIPT = 'LIMIT = 10\nNAME = "sales"\nprint(NAME * LIMIT)\n\x1b[31m = 1\n'
CLEAN = 'LIMIT = 10\nNAME = "sales"\nprint(NAME * LIMIT)\n'


def _record(services: Services, script: str = CLEAN, base: str | None = None) -> GeneratedRecord:
    store = services.generated
    record = GeneratedRecord(
        id=store.new_id(),
        created_at=store.now(),
        request="print the sales",
        strategy="customise_template" if base else "generate_custom",
        model="m",
        base_scaffold=base,
    )
    store.save(record, script)
    return record


def test_list_show_approve_grant_reject() -> None:
    with Services(Settings.from_env()) as services:
        first, second = _record(services), _record(services)
        assert {r.id for r in review.list_records(services)} == {first.id, second.id}
        detail = review.show(services, first.id)
        assert detail.script == CLEAN and not detail.changed_after_review and detail.runs == ()
        with pytest.raises(NotReviewed):
            review.approve(services, first.id, reviewer="ann", sha256="00000000")
        approved = review.approve(
            services, first.id, reviewer="ann", note="fine", hosts=["API.example.com"], sha256=detail.sha256[:16]
        )
        assert approved.status == "approved" and list(approved.granted_hosts) == ["api.example.com"]
        assert [r.id for r in review.list_records(services, "approved")] == [first.id]
        with pytest.raises(ConfigError, match="no host given"):
            review.grant(services, first.id, [], reviewer="ann")
        widened = review.grant(services, first.id, ["b.example.com"], reviewer="ann")
        assert list(widened.granted_hosts) == ["api.example.com", "b.example.com"]
        assert review.grant(services, first.id, [], reviewer="ann", replace=True).granted_hosts == []
        with pytest.raises(InvalidInput, match="needs a reason"):
            review.reject(services, second.id, reviewer="bob", reason=" ")
        assert review.reject(services, second.id, reviewer="bob", reason="too broad").status == "rejected"
        with pytest.raises(Conflict):
            review.approve(services, second.id, reviewer="ann")
        audit = services.generated.audit_entries()
    assert [(e["record_id"], e["reviewer"]) for e in audit][-1] == (second.id, "bob")


def test_a_changed_script_is_flagged() -> None:
    with Services(Settings.from_env()) as services:
        record = _record(services)
        review.approve(services, record.id, reviewer="ann")
        (services.generated.folder(record.id) / "script.py").write_text(CLEAN + "print('more')\n")
        assert review.show(services, record.id).changed_after_review


def test_diff_against_the_base_shows_controls_escaped() -> None:
    with Services(Settings.from_env()) as services:
        plain = _record(services)
        with pytest.raises(ConfigError, match="no base scaffold"):
            review.diff(services, plain.id)
        record = _record(services, SCRIPT, base="csv_summary")
        compared = review.diff(services, record.id)
    assert compared.against == "csv_summary" and compared.lines[0].startswith("--- scaffold/csv_summary")
    assert all("\x1b" not in line for line in compared.lines)
    assert any("LIMIT = 10" in line for line in compared.lines)


def test_proposals_by_rule_chosen_then_promoted(tmp_path: Path) -> None:
    settings = Settings.from_env(scaffolds_dir=tmp_path)
    with Services(settings) as services:
        record = _record(services)
        proposed = review.propose_params(services, record.id)
        assert proposed.source == "rule" and {p.name for p in proposed.proposals} == {"limit", "name"}
        with pytest.raises(InvalidInput, match="not a proposed parameter"):
            review.choose(proposed.proposals, ["nope"])
        chosen = review.choose(proposed.proposals, ["LIMIT", "limit"])
        assert [p.constant for p in chosen] == ["LIMIT"]
        with pytest.raises(NotReviewed):
            review.promote(services, record.id, "sales_printer", reviewer="ann", parameters=chosen)
        review.approve(services, record.id, reviewer="ann")
        done = review.promote(services, record.id, "sales_printer", reviewer="ann", parameters=chosen)
        assert done.folder == tmp_path / "sales_printer" and (done.folder / "program.py").is_file()
        assert services.generated.load_record(record.id).status == "promoted"
