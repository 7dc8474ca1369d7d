"""Errors become problem JSON with the class name as type, the status of the HTTP table and the error's data."""

from __future__ import annotations

from harness.checks.models import Finding
from harness.cli import exit_code_for
from harness.errors import Busy, Draining, GateRefused, NotFound, RunError
from harness.server.errors import problem, problem_body


def test_busy_and_draining_are_429_and_503_and_fail_the_cli() -> None:
    busy = problem(Busy("full", hint="retry after 3 s", retry_after=3))
    assert busy.status_code == 429 and busy.headers["retry-after"] == "3"
    assert busy.headers["content-type"] == "application/problem+json"
    assert problem_body(Draining("stopping"))["status"] == 503
    assert exit_code_for(Busy("full")) == exit_code_for(Draining("stopping")) == 1


def test_problem_carries_the_error_data() -> None:
    body = problem_body(NotFound("no run 0123456789ab", hint="see runs list", id="0123456789ab"))
    assert body == {
        "type": "NotFound",
        "title": "no run 0123456789ab",
        "status": 404,
        "detail": "no run 0123456789ab: see runs list",
        "hint": "see runs list",
        "data": {"id": "0123456789ab"},
    }
    finding = Finding(code="HS001", severity="error", line=2, col=0, message="os.system", hint="", checker="policy")
    gate = problem_body(GateRefused("refused", id="g-1", findings=[finding]))
    assert gate["status"] == 403 and gate["data"]["findings"][0]["code"] == "HS001"
    assert problem_body(RunError("lost", run_id="0123456789ab", stderr_tail="boom"))["data"] == {
        "run_id": "0123456789ab",
        "stderr_tail": "boom",
    }


def test_missing_inputs_and_fixes_travel_as_data() -> None:
    from harness.errors import MissingInputs, NotReviewed
    from harness.records import MissingInput

    wanted = MissingInput(name="group_by", type="string", example="region", description="column to group by")
    body = problem_body(MissingInputs("cannot run this request yet: missing group_by", missing=[wanted]))
    assert body["status"] == 422 and body["type"] == "MissingInputs"
    assert body["data"]["missing"][0]["name"] == "group_by"
    assert body["data"]["fix"] == {"action": "give_input", "target": "group_by", "values": []}
    from harness.errors import Fix

    refused = problem_body(NotReviewed("g-1 is pending", record_id="g-1", fix=Fix("review", "g-1")))
    assert refused["data"] == {"record_id": "g-1", "fix": {"action": "review", "target": "g-1", "values": []}}
