"""The review page's decisions: approve, reject, promote, on the same store and audit log as the CLI.

Each is the call ``harness review approve|reject`` and ``harness promote`` make, with the
page's form values; the trust store's lock, transition rules and audit chain do the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.errors import InvalidInput

if TYPE_CHECKING:
    from harness.review.store import GeneratedRecord
    from harness.services import Services

__all__ = ["approve", "parse_hosts", "promote", "reject"]

_SEPARATORS = re.compile(r"[\s,]+")


def parse_hosts(text: str) -> tuple[str, ...]:
    """The hosts typed into the form (comma, space or newline separated), validated like ``--allow-host``."""
    from harness.execution.egress import parse_allow

    return parse_allow([h for h in _SEPARATORS.split(text) if h])


def approve(
    services: Services, record_id: str, *, reviewer: str, reason: str, hosts: Sequence[str], sha256: str
) -> GeneratedRecord:
    """Approve the bytes the reviewer saw (``sha256`` as the page showed it), with any egress granted."""
    if not sha256:
        raise InvalidInput("the approval does not say which bytes were reviewed", name="sha256")
    return services.generated.transition(
        record_id, "approved", reviewer=reviewer, note=reason, grant_hosts=tuple(hosts), sha256=sha256
    )


def reject(services: Services, record_id: str, *, reviewer: str, reason: str) -> GeneratedRecord:
    """Reject the script, with the reason (required)."""
    if not reason.strip():
        raise InvalidInput("a rejection needs a reason", hint="say what is wrong with the script", name="reason")
    return services.generated.transition(record_id, "rejected", reviewer=reviewer, note=reason)


def promote(services: Services, record_id: str, *, name: str, constants: Sequence[str], reviewer: str) -> str:
    """Promote an approved script to ``scaffolds/<name>/`` with the confirmed constants as parameters."""
    from harness.review.params import propose
    from harness.review.promote import promote as promote_record

    _, script = services.generated.load(record_id)
    proposals = {p.constant: p for p in propose(script)}
    unknown = [c for c in constants if c not in proposals]
    if unknown:
        raise InvalidInput(f"{unknown[0]!r} is not a proposed parameter", name=unknown[0])
    folder = promote_record(
        services.generated,
        record_id,
        name,
        library_root=services.settings.scaffolds_dir,
        reviewer=reviewer,
        parameters=[proposals[c] for c in dict.fromkeys(constants)],
    )
    return folder.name
