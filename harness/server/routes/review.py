"""``/v1/review``: the generated-script queue and the review actions (the same store and audit log as the CLI)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from harness.app import review
from harness.review.store import GeneratedRecord
from harness.server.app import state_of
from harness.server.models import ApproveIn, PromoteIn, RejectIn

__all__ = ["router"]

router = APIRouter(prefix="/v1/review", tags=["review"])


@router.get("", response_model=list[GeneratedRecord])
def list_reviews(
    request: Request, status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None
) -> tuple[GeneratedRecord, ...]:
    """Generated scripts (``harness review list --json``), only those with ``status`` when given."""
    wanted = "pending_review" if status == "pending" else status  # the contract's short name for the queue
    return review.list_records(state_of(request).services, wanted)


@router.get("/{record_id}", response_model=review.ReviewDetail)
def show_review(request: Request, record_id: str) -> review.ReviewDetail:
    """One generated script: its record, its exact bytes (as text), their sha256 and its runs."""
    return review.show(state_of(request).services, record_id)


@router.get("/{record_id}/diff", response_model=review.ReviewDiff)
def diff_review(request: Request, record_id: str, against: str | None = None) -> review.ReviewDiff:
    """The script against a scaffold (its base by default), as unified diff lines."""
    return review.diff(state_of(request).services, record_id, against)


@router.post("/{record_id}/approve", response_model=GeneratedRecord)
def approve(request: Request, record_id: str, body: ApproveIn) -> GeneratedRecord:
    """Approve the script's current bytes as reviewed, granting ``hosts`` egress."""
    return review.approve(
        state_of(request).services, record_id, reviewer=body.reviewer, note=body.reason, hosts=body.hosts
    )


@router.post("/{record_id}/reject", response_model=GeneratedRecord)
def reject(request: Request, record_id: str, body: RejectIn) -> GeneratedRecord:
    """Reject the script, with the reason."""
    return review.reject(state_of(request).services, record_id, reviewer=body.reviewer, reason=body.reason)


@router.post("/{record_id}/promote", response_model=review.Promotion)
def promote(request: Request, record_id: str, body: PromoteIn) -> review.Promotion:
    """Turn an approved script into a scaffold; ``params`` picks which proposed constants become parameters."""
    services = state_of(request).services
    chosen = review.choose(review.propose_params(services, record_id).proposals, body.params)
    return review.promote(services, record_id, body.name, reviewer=body.reviewer, parameters=chosen)
