"""The review queue over HTTP: the same store and audit log as the CLI; a reviewed script runs by id."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import Server, start_server

from harness.review.store import GeneratedRecord, GeneratedStore

SCRIPT = "import harness_runtime as hr\n\nCOUNT = 3\nhr.result({'count': COUNT})\nprint('count is', COUNT)\n"


@pytest.fixture
def reviewing(sandbox_image: str) -> Iterator[tuple[Server, GeneratedStore]]:
    base = Path(tempfile.mkdtemp(prefix="hs-"))
    (base / "lib").mkdir()
    env = {
        "HARNESS_POOL_SIZE": "0",
        "HARNESS_GENERATED_DIR": str(base / "gen"),
        "HARNESS_SCAFFOLDS_DIR": str(base / "lib"),
    }
    srv = start_server(base / "data", "--concurrency", "1", env=env)
    try:
        yield srv, GeneratedStore(base / "gen", base / "data")
    finally:
        assert srv.stop() == 0, "\n".join(srv.stderr)
        shutil.rmtree(base, ignore_errors=True)


def _record(store: GeneratedStore, request: str) -> str:
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request=request, strategy="generate_custom", model="m"
    )
    store.save(record, SCRIPT)
    return record.id


def test_review_list_show_approve_run_reject_promote(reviewing: tuple[Server, GeneratedStore]) -> None:
    srv, store = reviewing
    first, second = _record(store, "count things"), _record(store, "count others")
    pending = srv.request("GET", "/v1/review?status=pending").json()
    assert {r["id"] for r in pending} == {first, second}
    shown = srv.request("GET", f"/v1/review/{first}").json()
    assert shown["script"] == SCRIPT and len(shown["sha256"]) == 64 and shown["record"]["status"] == "pending_review"
    assert srv.request("GET", "/v1/review/nope").status in (404, 422)

    approved = srv.request(
        "POST", f"/v1/review/{first}/approve", {"reviewer": "ana", "reason": "fine", "hosts": ["example.com"]}
    )
    assert approved.status == 200, approved.body
    assert approved.json()["status"] == "approved" and approved.json()["granted_hosts"] == ["example.com"]
    run_id = srv.request("POST", "/v1/runs", {"generated_id": first}).json()["run_id"]
    result = srv.result(run_id)["result"]
    assert result["status"] == "succeeded" and "count is 3" in result["stdout_tail"]
    assert result["policy"]["egress"] == ["example.com"]  # the reviewed grant travelled with the bytes

    assert srv.request("POST", f"/v1/review/{second}/reject", {"reviewer": "ana", "reason": "no"}).status == 200
    refused = srv.request("POST", "/v1/runs", {"generated_id": second, "allow_hosts": ["example.com"]})
    view = srv.result(refused.json()["run_id"])
    assert view["error"]["type"] == "NotReviewed" and view["error"]["status"] == 403
    conflict = srv.request("POST", f"/v1/review/{second}/approve", {"reviewer": "ana"})
    assert conflict.status == 409 and conflict.json()["type"] == "Conflict"

    promoted = srv.request(
        "POST", f"/v1/review/{first}/promote", {"name": "counter", "params": ["COUNT"], "reviewer": "ana"}
    )
    assert promoted.status == 200, promoted.body
    assert [p["name"] for p in promoted.json()["parameters"]] == ["count"]
    audit = [(e.get("record_id") or e.get("id"), e.get("to") or e.get("status")) for e in store.audit_entries()]
    assert (first, "approved") in audit and (second, "rejected") in audit
