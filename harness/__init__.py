"""harness: plain-language requests become vetted Python scripts, run in hardened throwaway containers.

The container is the security boundary. Static checks are a gate in front of it.
"""

from __future__ import annotations

__version__ = "0.1.0"

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
