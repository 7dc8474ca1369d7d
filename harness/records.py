"""Typed, immutable records that pass between stages: what to run and what came of it."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from harness.events import Event
from harness.execution.limits import Limits

__all__ = [
    "Analysis",
    "Artifact",
    "Candidate",
    "Decision",
    "Estimate",
    "MissingInput",
    "OutputMode",
    "PolicyReceipt",
    "RunResult",
    "RunSpec",
    "RunStatus",
    "new_run_id",
]

RunStatus = Literal[
    "succeeded", "failed", "timed_out", "oom_killed", "output_limit", "error", "interrupted", "cancelled"
]
OutputMode = Literal["new", "merge", "overwrite"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def new_run_id() -> str:
    """A short random id for a run (also the container's label and the run folder's name)."""
    return uuid.uuid4().hex[:12]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSpec(_Record):
    """One script to run once in the sandbox."""

    script: str = Field(description="Python source of the script")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")] = "main.py"
    argv: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict, description="the only environment the script sees")
    inputs: tuple[Path, ...] = Field((), description="host files or folders, visible read-only under /input")
    output_dir: Path | None = Field(None, description="host folder that receives /output after the run")
    output_mode: OutputMode = Field(
        "new",
        description="new: a fresh or empty folder only; merge: add new files, never overwrite; "
        "overwrite: replace a folder harness made earlier",
    )
    limits: Limits | None = Field(None, description="None: the settings' limits")
    runtime: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] | None = Field(
        None, description="OCI runtime for this run (auto or a registered name); None: the backend's"
    )
    egress: tuple[str, ...] = Field(
        (), description="hosts the host may fetch from for the script (a reviewed grant); the container stays offline"
    )
    run_id: str = Field(default_factory=new_run_id)
    gate_policy: Literal["strict", "standard"] | None = Field(
        None, description="the gate a remote worker re-runs before it runs the script; None: standard"
    )
    approved_sha256: str | None = Field(
        None, description="a reviewed script's approved hash; a remote worker runs only bytes that match it"
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [k for k in env if not _ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"invalid environment variable name {bad[0]!r}")
        return env


class Artifact(_Record):
    """A file collected from the run's /output."""

    path: str = Field(description="path relative to the output directory")
    size: int
    declared: bool = Field(False, description="the script announced it with an artifact event")
    description: str = ""


class PolicyReceipt(_Record):
    """What was applied to a run's container, as the engine was asked to apply it."""

    network: str = "none"
    read_only_rootfs: bool = True
    user: str = Field("10001:10001", description="the script's uid:gid")
    supervisor_user: str = Field("0:0", description="uid:gid of init and the in-container supervisor")
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = Field(
        ("SETUID", "SETGID", "SETPCAP", "KILL"), description="granted to the container user (the supervisor)"
    )
    capabilities: tuple[str, ...] = Field((), description="who holds which capabilities while the script runs")
    no_new_privileges: bool = True
    init: bool = True
    seccomp: str = "engine default"
    runtime: str = Field("runc", description="the OCI runtime the engine ran the container under, as it reported it")
    engine: str = Field("docker", description="the container engine and its version (docker, podman)")
    ipc: str = "none"
    log_driver: str = "none"
    input_mode: Literal["none", "bind_read_only", "copied_read_only"] = "none"
    env_keys: tuple[str, ...] = ()
    egress: tuple[str, ...] = Field((), description="hosts reachable through the host's fetch broker")
    limits: dict[str, object] = Field(default_factory=dict)


class RunResult(_Record):
    """The outcome of one run. ``status`` is decided by the host, never by the script."""

    run_id: str
    status: RunStatus
    exit_code: int | None
    message: str = Field("", description="why the run ended this way, in one line")
    image: str
    pooled: bool
    duration_s: float = Field(description="from handing over the script to the end of collection")
    first_event_s: float | None = Field(None, description="from hand-over to the first line received")
    timings: dict[str, float] = Field(default_factory=dict)
    events_count: int = 0
    events: tuple[Event, ...] = Field((), description="the first events, up to a cap")
    events_dropped: int = 0
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_tail: str = ""
    stderr_tail: str = ""
    output_dir: Path | None = None
    artifacts: tuple[Artifact, ...] = ()
    output_warnings: tuple[str, ...] = ()
    output_conflicts: tuple[str, ...] = Field((), description="outputs skipped because the destination had them")
    outputs_partial: bool = Field(False, description="some of /output was refused, skipped or past a cap")
    policy: PolicyReceipt

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status == "succeeded"


WorkflowType = Literal["automation", "security_audit", "research", "development", "project_management", "custom"]
Complexity = Literal["simple", "moderate", "complex"]
Strategy = Literal["use_template", "customise_template", "hybrid", "generate_custom"]


class Candidate(_Record):
    """A scaffold considered for a request, with how well it matched and why."""

    name: str
    workflow_type: str
    score: float = Field(description="BM25 score of the request against the scaffold's metadata")
    confidence: float = Field(ge=0, le=1)
    matched_terms: tuple[str, ...] = ()


class Estimate(_Record):
    """What a request is expected to cost, and what the numbers are based on."""

    duration_s: float
    tokens: int
    basis: str
    coordination_s: float = Field(
        1.0,
        ge=0,
        description="of duration_s, what harness adds around the script: container start, hand-over, collection",
    )
    token_budget: int | None = Field(None, description="the request's token budget, when the estimate was made for one")
    from_history: bool = Field(False, description="medians of similar past runs rather than priors")


class MissingInput(_Record):
    """Something a request lacks before it can run, as data a front-end can ask for (a form field, a flag).

    ``param``: a scaffold parameter (name, type, example, description); ``template``: a scaffold
    to start from, for ``strategy``; ``llm``: an LLM, for ``strategy``; ``template_or_llm``: no
    scaffold matched, so either a scaffold named by the caller or an LLM to write the script.
    """

    kind: Literal["param", "template", "llm", "template_or_llm", "unsupported"] = "param"
    name: str = Field(description="the parameter's name; for the other kinds, the kind")
    type: str = ""
    example: JsonValue = None
    description: str = ""
    strategy: str | None = Field(None, description="the strategy that needs it (template and llm kinds)")
    suggestions: tuple[str, ...] = Field((), description="values the inputs suggest (columns, choices)")
    reason: str = Field("", description="why the request and the data leave it open")
    sole: str | None = Field(
        None, description="the one value the data leaves for it, if exactly one: taken only if told not to ask"
    )

    def summary(self) -> str:
        """One line for a report or a log, naming no front-end's way of supplying it."""
        if self.kind == "param":
            example = f", e.g. {self.example!r}" if self.example is not None else ""
            return f"parameter {self.name} ({self.type or 'value'}{example}): {self.description}"
        if self.kind == "template":
            return f"a scaffold to start from, for strategy {self.strategy}"
        if self.kind == "llm":
            return f"an LLM (an Anthropic API key), for strategy {self.strategy}"
        if self.kind == "unsupported":
            return f"a scaffold that can do what was asked: {self.description}"
        return "a scaffold to fill, or an LLM to write a new script"


class Analysis(_Record):
    """What a request asks for: workflow type, complexity, candidate scaffolds, stated parameters."""

    request: str
    workflow_type: WorkflowType
    workflow_confidence: float = Field(ge=0, le=1)
    workflow_features: tuple[str, ...] = Field((), description="what led to the workflow type")
    complexity: Complexity
    complexity_features: tuple[str, ...] = ()
    roles: tuple[str, ...] = Field((), description="agent roles the request would use, most likely first")
    role_confidence: dict[str, float] = Field(default_factory=dict, description="how sure each role is needed")
    candidates: tuple[Candidate, ...] = ()
    stated_params: dict[str, str | list[str]] = Field(
        default_factory=dict, description="parameter values the request states, checked against the inputs"
    )
    unbound: tuple[MissingInput, ...] = Field(
        (), description="parameters the request names but the inputs do not support (e.g. no such column)"
    )
    unmet: tuple[str, ...] = Field((), description="asks the best scaffold cannot serve (e.g. an output format)")
    param_notes: tuple[str, ...] = Field((), description="where each stated value came from")
    estimate: Estimate
    llm: str = Field("", description="what an LLM analysis contributed, or why there was none")


class Decision(_Record):
    """How a request will be served, with the reasoning; ``missing`` blocks a template run."""

    strategy: Strategy
    template: str | None = None
    params: dict[str, object] = Field(default_factory=dict)
    confidence: float = Field(ge=0, le=1)
    reasoning: str
    missing: tuple[MissingInput, ...] = Field((), description="what must be supplied before this can run")
