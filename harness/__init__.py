"""harness: plain-language requests become vetted Python scripts, run in hardened throwaway containers.

The container is the security boundary. Static checks are a gate in front of it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from harness.errors import (
    ConfigError,
    EngineError,
    EngineRefused,
    EngineUnavailable,
    HarnessError,
    ImageError,
    InputError,
    NotReviewed,
    RunError,
    RunPrunedError,
    Tampered,
    UserError,
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
    "ConfigError",
    "DockerBackend",
    "EngineError",
    "EngineRefused",
    "EngineUnavailable",
    "HarnessError",
    "ImageError",
    "InputError",
    "Limits",
    "NotReviewed",
    "PolicyReceipt",
    "RunError",
    "RunPrunedError",
    "RunResult",
    "RunSpec",
    "Services",
    "Settings",
    "Tampered",
    "UserError",
    "__version__",
]
