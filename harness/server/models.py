"""The API's request and response bodies (FastAPI writes the OpenAPI document from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.app.scripts import LimitOverrides

__all__ = [
    "Accepted",
    "AnalyzeIn",
    "ApproveIn",
    "CheckIn",
    "ConfirmIn",
    "Health",
    "PoolState",
    "PromoteIn",
    "RejectIn",
    "RequestIn",
    "RunIn",
    "RunView",
]

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_SOURCE = 1024 * 1024  # a script of a megabyte is already far past what anyone reviews


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunIn(_In):
    """A script to run once (``source``), or a generated script again by ``generated_id``.

    Not ``app.scripts.ScriptRun`` itself: that one names host paths (inputs, output folder),
    which a client must never choose; inputs come as a tar, outputs go to the run folder.
    """

    source: Annotated[str, Field(max_length=MAX_SOURCE)] = ""
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")] = "main.py"
    env: dict[str, str] = Field(default_factory=dict, description="the only environment the script sees")
    limits: LimitOverrides = Field(default_factory=LimitOverrides)
    allow_hosts: list[str] = Field(default_factory=list, max_length=64)
    generated_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    inputs_tar: str | None = Field(None, description="base64 of an uncompressed tar; each entry is /input/NAME")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        import re

        bad = [k for k in env if not re.match(_ENV_NAME, k)]
        if bad:
            raise ValueError(f"invalid environment variable name {bad[0][:100]!r}")
        return env


class RequestIn(_In):
    """A plain-language request, served through the whole pipeline."""

    request: Annotated[str, Field(min_length=1, max_length=20_000)]
    template: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    strategy: str | None = None
    budget: int | None = Field(None, ge=1000)
    inputs_tar: str | None = None
    dry_run: bool = False
    assume: bool = Field(
        False, description="take a missing parameter when the data leaves exactly one value for it (the CLI's --yes)"
    )
    limits: LimitOverrides = Field(default_factory=LimitOverrides, description="this run's limits; unset: the server's")
    allow_plan: bool = Field(
        True,
        description="false: a request that splits into a plan is refused (InvalidInput allow_plan) before any work",
    )
    argv: list[Annotated[str, Field(max_length=20_000)]] = Field(
        default_factory=list, max_length=200, description="the caller's command line, recorded in the report"
    )
    input_origins: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list,
        max_length=100,
        description="the uploaded inputs' paths on the caller's side, in the tar's order, recorded in the report",
    )
    confirm: bool = Field(
        False,
        description="ask before running: once vetted, the job emits a `confirm` event and waits (up to its "
        "`wait_s`) for POST /v1/runs/{id}/confirm; no answer in time declines",
    )


class ConfirmIn(_In):
    """The answer to a request job's ``confirm`` event: run it, or not."""

    run: bool


class Accepted(BaseModel):
    """202: the job was admitted; follow ``events`` and fetch ``result``."""

    run_id: str
    status: Literal["queued", "running"]
    events: str
    result: str


class RunView(BaseModel):
    """A job's state, and its outcome once finished."""

    run_id: str
    kind: Literal["script", "request", "plan"]
    status: Literal["queued", "running", "finished", "cancelled"]
    result: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    run_dir: str | None = Field(None, description="the server's folder of this run (a plan's: output_dir)")
    output_dir: str | None = Field(None, description="a plan's output folder on the server")


class AnalyzeIn(_In):
    """A request to analyse (nothing runs)."""

    request: Annotated[str, Field(min_length=1, max_length=20_000)]


class CheckIn(_In):
    """A script to put through the static gate (nothing runs)."""

    source: Annotated[str, Field(max_length=MAX_SOURCE)]
    policy: Literal["standard", "strict"] = "strict"


class ApproveIn(_In):
    """Approve a generated script, optionally granting hosts."""

    reviewer: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Annotated[str, Field(max_length=2000)] = ""
    hosts: list[str] = Field(default_factory=list, max_length=64)


class RejectIn(_In):
    """Reject a generated script."""

    reviewer: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Annotated[str, Field(max_length=2000)] = ""


class PromoteIn(_In):
    """Promote an approved script into the scaffold library."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    params: list[str] = Field(default_factory=list)
    reviewer: Annotated[str, Field(min_length=1, max_length=200)] = "api"


class PoolState(BaseModel):
    """The warm pool now."""

    ready: int
    size: int


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]
    version: str
    pool: PoolState
    draining: bool
