"""harness: plain-language requests become vetted Python scripts, run in hardened throwaway containers.

The container is the security boundary. Static checks are a gate in front of it.

The public names load on first access (PEP 562): ``import harness`` costs almost nothing, so the
thin CLI, which talks to a running server, starts without pydantic, docker or the models.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Not ``typing.TYPE_CHECKING``: typing alone costs ~15 ms, ten times the rest of ``import harness``.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from harness.errors import (
        BudgetExhausted,
        ConfigError,
        Conflict,
        EngineError,
        EngineRefused,
        EngineUnavailable,
        GateRefused,
        HarnessError,
        ImageError,
        InputError,
        InvalidInput,
        LLMError,
        NotFound,
        NotReviewed,
        OutputExists,
        Refused,
        RunError,
        RunPrunedError,
        Tampered,
        Unavailable,
        UserError,
        http_status,
    )
    from harness.execution.backend import AgentDeclined, Backend
    from harness.execution.docker import DockerBackend
    from harness.execution.limits import Limits
    from harness.records import Artifact, PolicyReceipt, RunResult, RunSpec
    from harness.services import Services
    from harness.settings import Settings

# Where each public name lives; ``__getattr__`` imports it from there on first access.
_ERRORS = (
    "BudgetExhausted",
    "ConfigError",
    "Conflict",
    "EngineError",
    "EngineRefused",
    "EngineUnavailable",
    "GateRefused",
    "HarnessError",
    "ImageError",
    "InputError",
    "InvalidInput",
    "LLMError",
    "NotFound",
    "NotReviewed",
    "OutputExists",
    "Refused",
    "RunError",
    "RunPrunedError",
    "Tampered",
    "Unavailable",
    "UserError",
    "http_status",
)
_HOMES: dict[str, str] = {
    **dict.fromkeys(_ERRORS, "harness.errors"),
    "AgentDeclined": "harness.execution.backend",
    "Backend": "harness.execution.backend",
    "DockerBackend": "harness.execution.docker",
    "Limits": "harness.execution.limits",
    "Artifact": "harness.records",
    "PolicyReceipt": "harness.records",
    "RunResult": "harness.records",
    "RunSpec": "harness.records",
    "Services": "harness.services",
    "Settings": "harness.settings",
}

__all__ = [
    "AgentDeclined",
    "Artifact",
    "Backend",
    "BudgetExhausted",
    "ConfigError",
    "Conflict",
    "DockerBackend",
    "EngineError",
    "EngineRefused",
    "EngineUnavailable",
    "GateRefused",
    "HarnessError",
    "ImageError",
    "InputError",
    "InvalidInput",
    "LLMError",
    "Limits",
    "NotFound",
    "NotReviewed",
    "OutputExists",
    "PolicyReceipt",
    "Refused",
    "RunError",
    "RunPrunedError",
    "RunResult",
    "RunSpec",
    "Services",
    "Settings",
    "Tampered",
    "Unavailable",
    "UserError",
    "__version__",
    "http_status",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first access, then keep it as a module attribute."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, loaded or not, beside the module's own attributes."""
    return sorted(set(globals()) | set(__all__))
