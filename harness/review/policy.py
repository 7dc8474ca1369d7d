"""What a reviewed script may do when it runs again, decided from the verified trust store only.

The one rule behind every function here: read the script once, hash that buffer, and hand on that
same buffer, so the bytes that were checked are the bytes that run (or get promoted). Nothing in
``meta.json`` counts; the HMAC-chained trust store (``harness.review.trust``) decides.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection

from pydantic import BaseModel, ConfigDict

from harness.errors import Fix, GateRefused, NotReviewed, Tampered
from harness.execution.limits import Limits
from harness.generation.scaffolds import Scaffold
from harness.review.store import GeneratedStore
from harness.review.trust import Approval, TrustStore, seal_folder

__all__ = ["Grant", "assert_reviewed", "authorize_rerun", "scaffold_egress"]

_LIMIT_FIELDS = ("timeout_s", "memory", "cpus", "pids")


class Grant(BaseModel):
    """What a rerun of a generated script is allowed: these bytes, these hosts, these limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    status: str
    script: str
    sha256: str
    hosts: tuple[str, ...] = ()
    raised_limits: bool = False


def assert_reviewed(
    store: GeneratedStore, record_id: str, statuses: Collection[str] = ("approved",)
) -> tuple[Approval, bytes]:
    """The verified approval and the script's bytes (read once) that it covers; NotReviewed/Tampered if not."""
    approval = store.trust.current(record_id)
    if approval is None or approval.status not in statuses:
        state = approval.status if approval else "not reviewed"
        raise NotReviewed(
            f"{record_id} is {state}: no approval on this machine covers it",
            hint="review it, then approve it",
            record_id=record_id,
            fix=Fix("review", record_id),
        )
    data = store.read_script(record_id)
    if approval.sha256 is None or not hmac.compare_digest(hashlib.sha256(data).hexdigest(), approval.sha256):
        raise Tampered(
            f"{record_id}'s script changed after it was approved",
            hint="the reviewed bytes must run; review it again",
            path=str(store.folder(record_id) / "script.py"),
            id=record_id,
        )
    return approval, data


def authorize_rerun(store: GeneratedStore, record_id: str, limits: Limits, hosts: tuple[str, ...]) -> Grant:
    """The bytes, hosts and limits a rerun gets: ``hosts`` narrows the reviewed grant, never widens it."""
    from harness.checks import gate, run_checks

    store.load_record(record_id)  # an unknown id or a damaged record says so first
    approval = store.trust.current(record_id)
    reviewed = approval is not None and approval.status in ("approved", "promoted")
    if reviewed:
        approval, data = assert_reviewed(store, record_id, ("approved", "promoted"))
    else:
        data = store.read_script(record_id)
    status = approval.status if approval else "pending_review"
    defaults = Limits()
    raised = [name for name in _LIMIT_FIELDS if getattr(limits, name) > getattr(defaults, name)]
    if raised and not (approval is not None and reviewed and approval.raised_limits):
        raise NotReviewed(
            f"{record_id} is {status}: an unreviewed script runs only within the default limits",
            hint=f"drop the raised limits ({', '.join(raised)}) or approve the script first",
            record_id=record_id,
        )
    granted = approval.granted_hosts if approval is not None and reviewed else ()
    extra = sorted(set(hosts) - set(granted))
    if extra and not reviewed:
        raise NotReviewed(
            f"{record_id} is {status}: an unreviewed script gets no network",
            hint=f"approve it with the egress it needs ({', '.join(extra)})",
            record_id=record_id,
            fix=Fix("approve_egress", record_id, tuple(extra)),
        )
    if extra:
        raise NotReviewed(
            f"{record_id} was not approved with egress to {', '.join(extra)}",
            hint=f"granted: {', '.join(granted) or 'none'}; a wider grant needs a new review",
            record_id=record_id,
        )
    source = data.decode("utf-8", errors="replace")
    verdict = gate(run_checks(source, "strict"), "strict")
    if not verdict.passed:
        first = verdict.blocking[0]
        raise GateRefused(
            f"{record_id} fails the strict gate: {first.code} line {first.line}: {first.message}",
            hint=f"{len(verdict.blocking)} blocking finding(s); see harness check",
            id=record_id,
            findings=verdict.blocking,
        )
    return Grant(
        record_id=record_id,
        status=status,
        script=source,
        sha256=hashlib.sha256(data).hexdigest(),
        hosts=tuple(hosts) or tuple(granted),
        raised_limits=bool(approval is not None and reviewed and approval.raised_limits),
    )


def scaffold_egress(trust: TrustStore, scaffold: Scaffold) -> tuple[tuple[str, ...], str | None]:
    """A scaffold's egress if a verified promotion sealed exactly its files and egress, else none and why."""
    if not scaffold.egress:
        return (), None
    try:
        approval = trust.sealed(scaffold.name)
    except Tampered as exc:
        return (), f"scaffold {scaffold.name} runs without egress: {exc.message}"
    if approval is None or approval.scaffold is None:
        return (), f"scaffold {scaffold.name} runs without egress: no promotion on this machine granted it"
    seal = seal_folder(scaffold.folder, scaffold.name, scaffold.egress)
    if seal != approval.scaffold:
        changed = sorted(set(seal.files) ^ set(approval.scaffold.files))
        what = ", ".join(dict.fromkeys(path for path, _ in changed)) or "its egress"
        return (), f"scaffold {scaffold.name} runs without egress: changed since its promotion ({what})"
    return scaffold.egress, None
