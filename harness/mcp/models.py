"""What the MCP tools return: small, typed summaries (their JSON Schemas are the tools' output schemas).

Every text that came from a script (output, file names, messages) is already passed through
``visible`` when one of these is built: an agent's terminal shows it as written, not as obeyed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from harness.checks.models import Finding

__all__ = [
    "CheckOutcome",
    "OutputFile",
    "RequestOutcome",
    "ReviewItem",
    "ScriptOutcome",
    "TemplateSummary",
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputFile(_Out):
    """A file the run left in /output."""

    path: str = Field(description="relative to the run's output folder")
    size: int = Field(description="bytes")
    description: str = ""
    text: str | None = Field(None, description="the content, when the file is small UTF-8 text")


class ScriptOutcome(_Out):
    """The outcome of ``run_python``: the host's verdict, the ends of stdout and stderr, and the outputs."""

    run_id: str
    status: str = Field(description="decided by the host: succeeded, failed, timed_out, oom_killed, ...")
    exit_code: int | None
    message: str = Field("", description="why the run ended this way")
    duration_s: float
    stdout: str = Field(description="the end of stdout (control characters escaped)")
    stdout_bytes: int = Field(description="all of stdout; more than the excerpt when stdout_truncated")
    stdout_truncated: bool
    stderr: str = Field(description="the end of stderr (control characters escaped)")
    stderr_bytes: int
    stderr_truncated: bool
    run_folder: str = Field(description="the full event log (events.jsonl), result.json and output/ are here")
    outputs: tuple[OutputFile, ...] = ()
    outputs_partial: bool = Field(False, description="some of /output was refused, skipped or past a cap")
    output_warnings: tuple[str, ...] = ()


class RequestOutcome(_Out):
    """The outcome of ``run_request``: how the request was served, the verdict, and what it produced."""

    run_id: str
    status: str = Field(description="succeeded, failed, gate_failed, timed_out, ...")
    exit_code: int | None
    message: str = ""
    strategy: str
    template: str | None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    reasoning: str
    gate_passed: bool | None = Field(None, description="None when no script was checked")
    blocking_findings: tuple[str, ...] = Field((), description="why the gate refused the script, one line each")
    assertions: tuple[str, ...] = Field((), description="the scaffold's checks of the outputs: passed/failed lines")
    phases: tuple[str, ...] = Field((), description="a plan's phases: name, status and deliverables")
    generated_id: str | None = Field(None, description="a generated script: awaiting review under this id")
    duration_s: float
    tokens_used: int = 0
    report: str = Field(description="the full report (report.json)")
    run_folder: str
    outputs: tuple[OutputFile, ...] = ()
    outputs_partial: bool = False


class CheckOutcome(_Out):
    """The static-check gate's verdict on a script, with every finding."""

    passed: bool
    policy: str
    counts: dict[str, int] = Field(description="findings per severity")
    findings: tuple[Finding, ...] = ()


class TemplateSummary(_Out):
    """One scaffold of the library, in brief."""

    name: str
    title: str
    workflow_type: str
    description: str
    parameters: dict[str, str] = Field(description="name: type and description")
    example_request: str = ""


class ReviewItem(_Out):
    """A generated script awaiting review."""

    id: str
    created_at: str
    request: str
    strategy: str
    base_scaffold: str | None = None
    model: str
    gate_passed: bool
    attempts: int
