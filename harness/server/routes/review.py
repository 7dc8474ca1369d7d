"""``/v1/review``: the generated-script queue and the review actions (the same store and audit log as the CLI)."""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from harness.errors import ConfigError, InvalidInput
from harness.server.app import state_of
from harness.server.models import ApproveIn, PromoteIn, RejectIn

__all__ = ["router"]

router = APIRouter(prefix="/v1/review", tags=["review"])


def _record(record: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record.model_dump_json())
    return data


@router.get("")
def list_reviews(
    request: Request, status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None
) -> list[dict[str, Any]]:
    """Generated scripts (``harness review list --json``), only those with ``status`` when given."""
    wanted = "pending_review" if status == "pending" else status  # the contract's short name for the queue
    records = state_of(request).services.generated.all()
    return [_record(r) for r in records if wanted is None or r.status == wanted]


@router.get("/{record_id}")
def show_review(request: Request, record_id: str) -> dict[str, Any]:
    """One generated script: its record, its exact bytes (as text) and their sha256."""
    store = state_of(request).services.generated
    record = store.load_record(record_id)
    data = store.read_script(record_id)  # shown and hashed from one read
    return {
        "record": _record(record),
        "script": data.decode("utf-8", errors="replace"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "runs": store.runs(record_id),
    }


@router.get("/{record_id}/diff")
def diff_review(request: Request, record_id: str, against: str | None = None) -> dict[str, Any]:
    """A unified diff of the script against a scaffold (its base by default)."""
    from harness.generation.render import render, validate_params

    services = state_of(request).services
    record, script = services.generated.load(record_id)
    name = against or record.base_scaffold
    if name is None:
        raise ConfigError(f"{record_id} has no base scaffold", hint="pass against=SCAFFOLD")
    scaffold = services.library.get(name)
    base = render(scaffold, validate_params(scaffold, scaffold.examples[0].params))
    lines = difflib.unified_diff(base.splitlines(), script.splitlines(), f"scaffold/{name}", record_id, lineterm="")
    return {"record_id": record_id, "against": name, "diff": "\n".join(lines)}


@router.post("/{record_id}/approve")
def approve(request: Request, record_id: str, body: ApproveIn) -> dict[str, Any]:
    """Approve the script's current bytes as reviewed, granting ``hosts`` egress."""
    from harness.execution.egress import parse_allow

    store = state_of(request).services.generated
    hosts = parse_allow(body.hosts)
    return _record(store.transition(record_id, "approved", reviewer=body.reviewer, note=body.reason, grant_hosts=hosts))


@router.post("/{record_id}/reject")
def reject(request: Request, record_id: str, body: RejectIn) -> dict[str, Any]:
    """Reject the script, with the reason."""
    store = state_of(request).services.generated
    return _record(store.transition(record_id, "rejected", reviewer=body.reviewer, note=body.reason))


@router.post("/{record_id}/promote")
def promote(request: Request, record_id: str, body: PromoteIn) -> dict[str, Any]:
    """Turn an approved script into a scaffold; ``params`` picks which proposed constants become parameters."""
    from harness.review.params import propose
    from harness.review.promote import promote as promote_record

    services = state_of(request).services
    store = services.generated
    _, script = store.load(record_id)
    proposals = propose(script)
    by_key = {key: p for p in proposals for key in (p.constant, p.name)}
    unknown = [w for w in body.params if w not in by_key]
    if unknown:
        raise InvalidInput(
            f"{unknown[0]!r} is not a proposed parameter",
            hint=f"proposed: {', '.join(p.name for p in proposals) or 'none'}",
            name=unknown[0],
        )
    chosen = list(dict.fromkeys(by_key[w] for w in body.params))
    folder = promote_record(
        store,
        record_id,
        body.name,
        library_root=services.settings.scaffolds_dir,
        reviewer=body.reviewer,
        parameters=chosen,
    )
    return {"record_id": record_id, "name": body.name, "folder": str(folder), "parameters": [p.name for p in chosen]}
