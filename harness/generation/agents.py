"""Host-mediated agent calls: a sandboxed script asks for a role, the host answers from the API.

The container never gets the key or a network. Unknown roles, a missing provider, an
exhausted budget or a failed call reach the script as a clear refusal it can handle.
"""

from __future__ import annotations

import threading
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError
from harness.events import AgentRequestEvent
from harness.execution.backend import AgentDeclined
from harness.generation.llm import Llm

__all__ = ["ROLES_FILE", "AgentBroker", "Role", "load_roles"]

ROLES_FILE = Path(__file__).with_name("roles.toml")


class Role(BaseModel):
    """What an agent role is: its system prompt, model (default: the settings') and answer size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    model: str | None = None
    max_tokens: int = 1024


def load_roles(path: Path = ROLES_FILE) -> dict[str, Role]:
    """The roles file, validated."""
    with path.open("rb") as fh:
        return {name: Role.model_validate(spec) for name, spec in tomllib.load(fh).items()}


class AgentBroker:
    """Answers ``agent_request`` events for the backend (its ``on_agent`` handler)."""

    def __init__(self, llm: Llm | None, roles: dict[str, Role] | None = None) -> None:
        self.llm = llm
        self.roles = roles if roles is not None else load_roles()
        self.calls = 0
        self.declined = 0
        self._lock = threading.Lock()

    def __call__(self, request: AgentRequestEvent) -> str:
        """Answer one request or raise AgentDeclined with the reason the script will see."""
        with self._lock:
            self.calls += 1
        role = self.roles.get(request.role)
        if role is None:
            self._decline()
            raise AgentDeclined(f"unknown role {request.role!r}; known roles: {', '.join(sorted(self.roles))}")
        if self.llm is None:
            self._decline()
            raise AgentDeclined("no agent provider is configured (the host has no ANTHROPIC_API_KEY)")
        try:
            return self.llm.complete(
                system=role.system, prompt=request.prompt, model=role.model, max_tokens=role.max_tokens
            )
        except HarnessError as exc:
            self._decline()
            raise AgentDeclined(exc.one_line()) from None

    def _decline(self) -> None:
        with self._lock:
            self.declined += 1
