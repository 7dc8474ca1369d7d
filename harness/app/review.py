"""Review of generated scripts: list, show, diff, approve, reject, grant, propose parameters, promote.

People decide what is trusted; these are the only functions a front-end calls to record a
decision, so the CLI, the HTTP API and the review page write the same store and audit log.
Every text a reviewer reads came from a request or an LLM: ``show`` hands it on as stored,
and ``diff`` hands on lines whose control characters are already made visible.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import ConfigError, Fix, InvalidInput
from harness.review.params import Proposal
from harness.review.store import GeneratedRecord

if TYPE_CHECKING:
    from harness.services import Services

__all__ = [
    "Promotion",
    "Proposals",
    "ReviewDetail",
    "ReviewDiff",
    "approve",
    "choose",
    "diff",
    "grant",
    "list_records",
    "promote",
    "propose_params",
    "reject",
    "show",
]


class ReviewDetail(BaseModel):
    """One generated script as a reviewer sees it: the record, the script's bytes as read, their hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record: GeneratedRecord
    script: str = Field(description="the script, decoded from the same read that was hashed")
    sha256: str
    changed_after_review: bool = Field(description="the bytes no longer hash as the approval says")
    runs: tuple[dict[str, Any], ...] = Field((), description="its runs, oldest first (run_id, status, ...)")


class ReviewDiff(BaseModel):
    """A generated script against a scaffold rendered with its first example's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    against: str = Field(description="the scaffold compared with")
    lines: tuple[str, ...] = Field(description="unified diff lines, control characters made visible")


class Proposals(BaseModel):
    """Parameters proposed for promoting a script, and what the LLM noted while choosing them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    proposals: tuple[Proposal, ...]
    notes: tuple[str, ...] = ()
    source: str = Field(description="llm or rule: who proposed them")


class Promotion(BaseModel):
    """A promoted script: the new scaffold's name and folder, and the parameters it got."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    name: str
    folder: Path
    parameters: tuple[Proposal, ...] = ()


def list_records(services: Services, status: str | None = None) -> tuple[GeneratedRecord, ...]:
    """Every generated script's record (pending, approved, rejected, promoted), or those with ``status``."""
    records = services.generated.all()
    return tuple(r for r in records if status is None or r.status == status)


def show(services: Services, record_id: str) -> ReviewDetail:
    """A generated script with its record; the bytes shown are the bytes hashed (one read)."""
    store = services.generated
    record = store.load_record(record_id)
    data = store.read_script(record_id)
    digest = hashlib.sha256(data).hexdigest()
    return ReviewDetail(
        record=record,
        script=data.decode("utf-8", errors="replace"),
        sha256=digest,
        changed_after_review=bool(record.reviewed_sha256 and record.reviewed_sha256 != digest),
        runs=tuple(store.runs(record_id)),
    )


def diff(services: Services, record_id: str, against: str | None = None) -> ReviewDiff:
    """How a generated script differs from ``against`` (default: the scaffold it was based on)."""
    from harness.generation.render import render, validate_params
    from harness.safe_text import visible, visible_lines

    record, script = services.generated.load(record_id)
    name = against or record.base_scaffold
    if name is None:
        raise ConfigError(f"{record_id} has no base scaffold", hint="name a scaffold to compare with").fixed_by(
            Fix("give_input", "against")
        )
    scaffold = services.library.get(name)
    base = render(scaffold, validate_params(scaffold, scaffold.examples[0].params))
    # Compared line by line as Python splits lines; each line has its controls escaped.
    lines = difflib.unified_diff(
        visible_lines(base), visible_lines(script), visible(f"scaffold/{name}"), record_id, lineterm=""
    )
    return ReviewDiff(record_id=record_id, against=name, lines=tuple(lines))


def approve(
    services: Services,
    record_id: str,
    *,
    reviewer: str,
    note: str = "",
    hosts: Sequence[str] = (),
    sha256: str | None = None,
) -> GeneratedRecord:
    """Approve the script's current bytes (only if they hash to ``sha256``, when given), granting ``hosts``."""
    from harness.execution.egress import parse_allow

    return services.generated.transition(
        record_id, "approved", reviewer=reviewer, note=note, grant_hosts=parse_allow(tuple(hosts)), sha256=sha256
    )


def reject(services: Services, record_id: str, *, reviewer: str, reason: str) -> GeneratedRecord:
    """Reject the script, with the reason (required)."""
    if not reason.strip():
        raise InvalidInput("a rejection needs a reason", hint="say why it is rejected", name="reason")
    return services.generated.transition(record_id, "rejected", reviewer=reviewer, note=reason)


def grant(
    services: Services, record_id: str, hosts: Sequence[str], *, reviewer: str, replace: bool = False
) -> GeneratedRecord:
    """Add ``hosts`` to an approved script's egress grant, or replace it with them (none: revoke)."""
    from harness.execution.egress import parse_allow

    parsed = parse_allow(tuple(hosts))
    if not parsed and not replace:
        raise ConfigError(
            "no host given", hint="name a host to add, or replace the grant with none to revoke it"
        ).fixed_by(Fix("give_input", "hosts"))
    return services.generated.grant(record_id, parsed, reviewer=reviewer, replace=replace)


def propose_params(services: Services, record_id: str) -> Proposals:
    """Parameters to make of a script's constants: the LLM's choice when configured, else the plain rule."""
    from harness.review.params import propose, propose_with_llm

    record, script = services.generated.load(record_id)
    settings = services.settings
    if settings.anthropic_api_key is None:
        return Proposals(record_id=record_id, proposals=tuple(propose(script)), source="rule")
    from harness.generation.budget import Budget
    from harness.generation.llm import Llm

    llm = Llm(settings, Budget(settings.budget), client=services.llm_client)
    try:
        proposals, notes = propose_with_llm(llm, script, record.request)
    finally:
        llm.close()
    return Proposals(record_id=record_id, proposals=tuple(proposals), notes=tuple(notes), source="llm")


def choose(proposals: Sequence[Proposal], wanted: Sequence[str]) -> tuple[Proposal, ...]:
    """The proposals named in ``wanted`` (by constant or parameter name), each once; InvalidInput for others."""
    from harness.safe_text import visible

    by_key = {key: p for p in proposals for key in (p.constant, p.name)}
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        offered = visible(", ".join(f"{p.constant} ({p.name})" for p in proposals) or "none")
        raise InvalidInput(f"{unknown[0]!r} is not a proposed parameter", hint=f"proposed: {offered}", name=unknown[0])
    return tuple(dict.fromkeys(by_key[w] for w in wanted))


def promote(
    services: Services, record_id: str, name: str, *, reviewer: str, parameters: Sequence[Proposal] = ()
) -> Promotion:
    """Turn an approved script into the scaffold ``name``, with the confirmed ``parameters``."""
    from harness.review.promote import promote as promote_record

    folder = promote_record(
        services.generated,
        record_id,
        name,
        library_root=services.settings.scaffolds_dir,
        reviewer=reviewer,
        parameters=parameters,
    )
    return Promotion(record_id=record_id, name=name, folder=folder, parameters=tuple(parameters))
