"""The review page's decisions, made through ``harness.app.review``: the same store and audit log as the CLI.

What the page adds to the use cases: the hosts come from one text field, an approval must name
the bytes the page showed (their sha256 travels in the form), and the parameters offered for
promotion are the plain rule's proposals, so a page load never calls an LLM.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.app import review
from harness.errors import InvalidInput

if TYPE_CHECKING:
    from harness.review.params import Proposal
    from harness.review.store import GeneratedRecord
    from harness.services import Services

__all__ = ["approve", "promote", "proposals", "reject", "split_hosts"]

_SEPARATORS = re.compile(r"[\s,]+")


def split_hosts(text: str) -> tuple[str, ...]:
    """The hosts typed into the form, comma, space or newline separated (validated by the approval)."""
    return tuple(h for h in _SEPARATORS.split(text) if h)


def approve(
    services: Services, record_id: str, *, reviewer: str, reason: str, hosts: Sequence[str], sha256: str
) -> GeneratedRecord:
    """Approve the bytes the reviewer saw (``sha256`` as the page showed it), with any egress granted."""
    if not sha256:
        raise InvalidInput("the approval does not say which bytes were reviewed", name="sha256")
    return review.approve(services, record_id, reviewer=reviewer, note=reason, hosts=hosts, sha256=sha256)


def reject(services: Services, record_id: str, *, reviewer: str, reason: str) -> GeneratedRecord:
    """Reject the script, with the reason (required)."""
    return review.reject(services, record_id, reviewer=reviewer, reason=reason)


def proposals(script: str) -> list[Proposal]:
    """The parameters the promotion form offers: the plain rule's proposals for the script's constants."""
    from harness.review.params import propose

    try:
        return propose(script)
    except (SyntaxError, ValueError):
        return []


def promote(services: Services, record_id: str, *, name: str, constants: Sequence[str], reviewer: str) -> str:
    """Promote an approved script to ``scaffolds/<name>/`` with the confirmed constants as parameters."""
    detail = review.show(services, record_id)
    chosen = review.choose(proposals(detail.script), list(constants))
    return review.promote(services, record_id, name, reviewer=reviewer, parameters=chosen).name
