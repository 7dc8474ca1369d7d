"""One Settings model. Precedence: explicit argument > ``HARNESS_*`` environment > default."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from harness.errors import ConfigError
from harness.execution.limits import Limits, parse_size

__all__ = [
    "DEFAULT_MODEL",
    "Settings",
    "default_data_dir",
    "default_generated_dir",
    "default_roles_file",
    "default_scaffolds_dir",
]

ENV_PREFIX = "HARNESS_"
_RUNTIME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # "auto" matches too
# The one place the default model is named: a current model of the installed SDK's list.
DEFAULT_MODEL = "claude-sonnet-5-5"


def default_data_dir() -> Path:
    """The per-user data directory (runs, history), following the platform's conventions."""
    from platformdirs import user_data_path

    return user_data_path("harness", appauthor=False)


def default_scaffolds_dir() -> Path:
    """``HARNESS_SCAFFOLDS_DIR``, else the package's library (read when Settings is built directly)."""
    from harness.generation.scaffolds import scaffolds_root

    return scaffolds_root()


def default_roles_file() -> Path:
    """The agent roles shipped with the package."""
    from harness.generation.agents import ROLES_FILE

    return ROLES_FILE


def default_generated_dir(scaffolds_dir: Path | None = None) -> Path:
    """``generated/`` beside the scaffold library (the project's review queue)."""
    return (scaffolds_dir or default_scaffolds_dir()).parent / "generated"


class Settings(BaseModel):
    """Everything harness can be configured with, resolved once and passed down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    docker_host: str | None = Field(None, description="engine address; default: DOCKER_HOST or the local socket")
    image: str | None = Field(None, description="sandbox image to use as is; default: built from this tree")
    base_image: str = Field("python:3.11-slim", description="base for the sandbox image when it can be pulled")
    runtime: str = Field(
        "auto", description="OCI runtime: auto (runsc when the engine has it registered, else runc) or a name"
    )
    broker_url: str | None = Field(
        None, description="redis:// broker of harness workers: runs go to the queue instead of the local engine"
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="runs and history live here")
    pool_size: int = Field(2, ge=0, le=32, description="pre-started containers kept ready; 0 turns the pool off")
    pool_idle_s: float = Field(
        600.0,
        ge=5,
        le=24 * 3600,
        allow_inf_nan=False,
        description="a pooled container with no job ends itself after this",
    )
    match_threshold: float = Field(0.45, ge=0, le=1, description="least confidence to fill a scaffold unasked")
    limits: Limits = Field(default_factory=Limits)
    anthropic_api_key: SecretStr | None = Field(None, description="from ANTHROPIC_API_KEY; only the host holds it")
    anthropic_base_url: str | None = Field(None, description="from ANTHROPIC_BASE_URL; default: the SDK's")
    model: str = Field(DEFAULT_MODEL, description="model for generation and agent calls")
    max_tokens: int = Field(8192, ge=256, le=64000, description="largest answer per call")
    temperature: float | None = Field(None, ge=0, le=1, description="sent only when set; default: the model's")
    budget: int = Field(60_000, ge=1000, description="tokens per request, all calls included")
    gate_attempts: int = Field(3, ge=1, le=10, description="generations tried against the gate")
    run_repairs: int = Field(1, ge=0, le=5, description="fixes tried after a failed sandbox run")
    llm_retries: int = Field(2, ge=0, le=10, description="SDK retries on 429/5xx, with backoff")
    llm_timeout_s: float = Field(120.0, gt=0, description="per API call")
    llm_analysis: Literal["auto", "always", "off"] = Field(
        "auto", description="ask the LLM to analyse requests: when the heuristic is unsure, always, or never"
    )
    scaffolds_dir: Path = Field(default_factory=default_scaffolds_dir, description="the scaffold library")
    roles_file: Path = Field(default_factory=default_roles_file, description="the agent roles (TOML)")
    generated_dir: Path = Field(
        default_factory=lambda data: default_generated_dir(data.get("scaffolds_dir")), description="generated scripts"
    )
    runs_max_bytes: int = Field(
        2 * 1024**3, ge=0, description="the runs folder's size; past it the oldest runs are pruned (0: no limit)"
    )
    runs_max_age_days: float = Field(
        30.0, ge=0, description="runs older than this are pruned after each run (0: no limit)"
    )

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        if not _RUNTIME_NAME.match(value):
            raise ValueError("give auto or a runtime the engine has registered, e.g. runc or runsc")
        return value

    @field_validator("runs_max_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        # ``2g`` as well as a byte count, like the limits' sizes.
        return parse_size(value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Resolve settings from ``overrides`` (non-None), then ``HARNESS_*`` variables, then defaults."""
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        for name in (
            "docker_host",
            "image",
            "base_image",
            "runtime",
            "broker_url",
            "data_dir",
            "pool_size",
            "pool_idle_s",
            "match_threshold",
            "model",
            "max_tokens",
            "temperature",
            "budget",
            "gate_attempts",
            "run_repairs",
            "llm_retries",
            "llm_timeout_s",
            "llm_analysis",
            "scaffolds_dir",
            "roles_file",
            "generated_dir",
            "runs_max_bytes",
            "runs_max_age_days",
        ):
            value = env.get(ENV_PREFIX + name.upper())
            if value not in (None, ""):
                data[name] = value
        # The SDK's own variable names, so an existing set-up works as it is.
        for name, variable in (
            ("anthropic_api_key", "ANTHROPIC_API_KEY"),
            ("anthropic_base_url", "ANTHROPIC_BASE_URL"),
        ):
            if env.get(variable):
                data[name] = env[variable]
        if "scaffolds_dir" not in data:
            # The injected environment decides, not os.environ: from_env(environ={}) is the package's library.
            from harness.generation.scaffolds import scaffolds_root

            data["scaffolds_dir"] = scaffolds_root(env)
        limit_env = {
            field: env[ENV_PREFIX + field.upper()]
            for field in Limits.model_fields
            if env.get(ENV_PREFIX + field.upper())
        }
        limit_overrides = overrides.pop("limits", None) or {}
        if isinstance(limit_overrides, Limits):
            limit_overrides = limit_overrides.model_dump()
        data["limits"] = Limits.build(**{**limit_env, **limit_overrides})
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"invalid setting {field}={first.get('input')!r}",
                hint=f"{str(first['msg']).lower()} (set {ENV_PREFIX}{field.upper()} or pass it explicitly)",
            ) from None

    @property
    def runs_dir(self) -> Path:
        """Where each run's folder (report, outputs) is written."""
        return self.data_dir / "runs"
