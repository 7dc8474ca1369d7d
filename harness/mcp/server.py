"""The MCP server: harness's tools for coding agents, over stdio, with the official ``mcp`` SDK.

Tools (typed signatures, so the SDK derives and enforces each input schema):

* ``run_python``: run code in the sandbox, with input files given by content;
* ``run_request``: serve a plain-language request (scaffold, gate, sandbox, report);
* ``check_code``: the static-check gate's findings;
* ``list_templates`` / ``show_template``: the scaffold library;
* ``list_pending_reviews``: generated scripts waiting for a person.

Every failure a caller can cause comes back as a tool result with ``isError`` and one line
(``InvalidInput: ...``, named after the harness error class), never as a protocol error, so an
agent reads it and corrects the call. Runs report progress from their events when the client
sent a progress token. The tools call the same library operations as the CLI; the container,
not the checks, is the security boundary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError

from harness import __version__
from harness.app.catalog import ScaffoldInfo
from harness.app.scripts import LimitOverrides
from harness.errors import GateRefused, HarnessError, RunError
from harness.events import Event
from harness.mcp.files import decode_inputs, input_folder, read_inline
from harness.mcp.models import (
    CheckOutcome,
    OutputFile,
    RequestOutcome,
    ReviewItem,
    ScriptOutcome,
    TemplateSummary,
)
from harness.mcp.remote import RemoteError
from harness.safe_text import visible

if TYPE_CHECKING:
    from pathlib import Path

    from harness.app.cancel import CancelToken
    from harness.client import Client
    from harness.orchestrate import PlanReport
    from harness.progress import RequestEvent
    from harness.records import Artifact, RunResult
    from harness.report import Report
    from harness.services import Services

__all__ = ["EXCERPT_CHARS", "build_server", "serve"]

T = TypeVar("T")
Notify = Callable[[str], None]
FindServer = Callable[[], "Client | None"]

EXCERPT_CHARS = 4000  # of stdout and of stderr, from their ends
_PROGRESS_QUEUE = 256  # progress notes waiting to be sent; past this they are dropped (they only inform)
_PROGRESS_EVERY_S = 0.05  # at most this often, except a run's start, end and phases
_NOTE_CHARS = 200

_INSTRUCTIONS = (
    "harness runs Python in hardened, throwaway, offline containers and keeps every run's folder. "
    "Use run_python for code you wrote (input files by content, read them under /input, write results "
    "to /output); run_request to have a plain-language request served by a reviewed scaffold; "
    "check_code to see the static gate's findings before running; list_templates/show_template for the "
    "scaffold library; list_pending_reviews for generated scripts awaiting a person's review."
)

Code = Annotated[str, Field(min_length=1, max_length=1_000_000, description="the Python source to run")]
Files = Annotated[
    dict[str, str],
    Field(description="input files as UTF-8 text by file name; the script reads them at /input/NAME"),
]
Files64 = Annotated[
    dict[str, str],
    Field(description="binary input files as standard base64 by file name; read at /input/NAME"),
]
Params = Annotated[dict[str, str], Field(description="scaffold parameters by name (see show_template)")]
Timeout = Annotated[
    float | None, Field(gt=0, le=3600, description="wall-clock seconds before the run is killed; default 60")
]
Memory = Annotated[
    str | None,
    Field(pattern=r"^\s*\d+(\.\d+)?\s*[kKmMgG]?(i?[bB])?\s*$", description="memory limit such as 256m or 1g"),
]


class _Server(MCPServer[Any]):
    """MCPServer whose argument errors read as one line, like every other tool error here."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Call a tool; a schema violation becomes one ``invalid arguments`` line naming the field."""
        known = {tool.name: tool.input_schema.get("properties", {}) for tool in await self.list_tools()}
        unknown = sorted(set(arguments) - set(known.get(name, arguments)))
        if unknown:
            # The SDK would drop them silently: a misspelt limit would then run with the default.
            expected = ", ".join(known[name]) or "none"
            raise ToolError(
                f"Error executing tool {name}: invalid arguments: unknown argument {visible(unknown[0])!r}"
                f" (expected: {expected})"
            )
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(f"Error executing tool {name}: {_validation_line(cause)}") from cause
            raise


def _validation_line(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "arguments"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid arguments: {visible(where)}: {first['msg']}{more}"


class _ToolErrors:
    """Harness errors leave a tool as one line named after their class (an ``isError`` result)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, HarnessError):
            # A job a harness serve failed keeps the class name the server gave it.
            name = exc.kind if isinstance(exc, RemoteError) else type(exc).__name__
            raise ToolError(f"{name}: {visible(exc.one_line())}{_findings(exc)}") from exc


def _findings(exc: HarnessError) -> str:
    """What the gate refused, on the same line: the first blocking findings of a GateRefused."""
    if not isinstance(exc, GateRefused) or not exc.findings:
        return ""
    shown = "; ".join(f"{f.code} line {f.line}: {f.message}" for f in exc.findings[:3])
    more = f"; and {len(exc.findings) - 3} more" if len(exc.findings) > 3 else ""
    return f" [{shown}{more}]"


async def _with_progress(ctx: Context[Any, Any], work: Callable[[Notify, CancelToken], T]) -> T:
    """Run ``work`` in a worker thread; the notes it posts become progress notifications.

    When the client cancels the call (``notifications/cancelled``), the SDK cancels this task;
    the token is then set, so the run stops (its container is killed) instead of running on.
    """
    from harness.app.cancel import CancelToken

    send, receive = anyio.create_memory_object_stream[str](_PROGRESS_QUEUE)
    cancel = CancelToken()

    async def forward() -> None:
        sent = 0
        async with receive:
            async for note in receive:
                sent += 1  # progress must increase with every notification; there is no total
                await ctx.report_progress(sent, None, note)

    def post(note: str) -> None:
        try:
            anyio.from_thread.run_sync(send.send_nowait, note)
        except anyio.WouldBlock:
            pass  # a flood of notes is dropped, not queued: the run's own log keeps every event
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, RuntimeError):
            pass  # the call was cancelled (nobody listens) or the loop is ending: the run still ends properly

    async def watch(scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await anyio.sleep_forever()
            finally:
                if not scope.cancel_called:
                    cancel.set()  # the call itself was cancelled, not the watch

    failure: HarnessError | None = None
    watching = anyio.CancelScope()
    async with anyio.create_task_group() as group:
        group.start_soon(forward)
        group.start_soon(watch, watching)
        try:
            result = await anyio.to_thread.run_sync(work, post, cancel)
        except HarnessError as exc:
            failure = exc  # raised past the task group, which would wrap it in an exception group
        finally:
            watching.cancel()
            send.close()
    with _ToolErrors():
        if failure is not None:
            raise failure
    return result


def _event_notes(post: Notify) -> Callable[[Event], None]:
    """A run's event sink that posts a short note for the events worth telling, at a bounded rate."""
    last = 0.0

    def on_event(event: Event) -> None:
        nonlocal last
        note = _note(event)
        if note is None:
            return
        now = time.monotonic()
        if event.kind in ("run_started", "run_finished", "phase") or now - last >= _PROGRESS_EVERY_S:
            last = now
            post(visible(note[:_NOTE_CHARS]))

    return on_event


def _note(event: Event) -> str | None:
    if event.kind == "run_started":
        return f"run {event.run_id} started in a {'pooled' if event.pooled else 'fresh'} container"
    if event.kind == "run_finished":
        return f"run {event.run_id} {event.status} (exit code {event.exit_code}) in {event.duration_s:.2f}s"
    if event.kind == "phase":
        return f"phase {event.name} {'started' if event.status == 'start' else 'ended'}"
    if event.kind == "progress":
        total = f"/{event.total:g}" if event.total is not None else ""
        where = f"{event.phase}: " if event.phase else ""
        return f"{where}{event.done:g}{total} {event.message}".rstrip()
    if event.kind == "log":
        return f"{event.level}: {event.message}"
    if event.kind == "artifact":
        return f"output {event.path}"
    if event.kind == "output":
        return f"{event.stream}: {event.text}"
    return None


def _excerpt(tail: str, total: int) -> tuple[str, bool]:
    """The last EXCERPT_CHARS characters of a stream's tail, escaped, and whether anything is left out."""
    part = tail[-EXCERPT_CHARS:]
    return visible(part, lines=True), len(part.encode("utf-8", errors="replace")) < total


def _outputs(root: Path | None, artifacts: tuple[Artifact, ...]) -> tuple[OutputFile, ...]:
    inline = read_inline(root, artifacts) if root is not None else {}
    return tuple(
        OutputFile(path=visible(a.path), size=a.size, description=visible(a.description), text=inline.get(a.path))
        for a in artifacts
    )


def script_outcome(result: RunResult, run_folder: Path) -> ScriptOutcome:
    """A run's result as ``run_python`` returns it."""
    stdout, stdout_cut = _excerpt(result.stdout_tail, result.stdout_bytes)
    stderr, stderr_cut = _excerpt(result.stderr_tail, result.stderr_bytes)
    return ScriptOutcome(
        run_id=result.run_id,
        status=result.status,
        exit_code=result.exit_code,
        message=visible(result.message),
        duration_s=round(result.duration_s, 3),
        stdout=stdout,
        stdout_bytes=result.stdout_bytes,
        stdout_truncated=stdout_cut,
        stderr=stderr,
        stderr_bytes=result.stderr_bytes,
        stderr_truncated=stderr_cut,
        run_folder=str(run_folder),
        outputs=_outputs(result.output_dir, result.artifacts),
        outputs_partial=result.outputs_partial,
        output_warnings=tuple(visible(w) for w in result.output_warnings),
    )


def request_outcome(report: Report, run_folder: Path) -> RequestOutcome:
    """A request's report as ``run_request`` returns it."""
    from harness.records import Artifact

    result, decision = report.execution_result, report.dispatch_decision
    quality = report.quality_metrics
    blocking: tuple[str, ...] = ()
    assertions: tuple[str, ...] = ()
    if quality is not None:
        if not quality.gate_passed:
            blocking = tuple(
                visible(f"{f.get('code')} line {f.get('line')}: {f.get('message')}")
                for f in quality.findings
                if f.get("severity") == "error"
            )
        assertions = tuple(
            visible(f"{'passed' if a.passed else 'failed'}: {a.description}" + (f" ({a.detail})" if a.detail else ""))
            for a in quality.assertions
        )
    generated = report.generation.get("id") if report.generation else None
    out_dir = None if result.output_dir is None else run_folder.parent / result.output_dir
    artifacts = tuple(Artifact(path=d.path, size=d.size, description=d.description) for d in result.deliverables)
    return RequestOutcome(
        run_id=report.run_id,
        status=result.status,
        exit_code=result.exit_code,
        message=visible(result.message),
        strategy=decision.strategy,
        template=decision.template,
        params=decision.params,
        reasoning=visible(decision.reasoning),
        gate_passed=None if quality is None else quality.gate_passed,
        blocking_findings=blocking,
        assertions=assertions,
        generated_id=generated if isinstance(generated, str) else None,
        duration_s=round(report.performance_metrics.total_s, 3),
        tokens_used=report.performance_metrics.tokens_used,
        report=str(run_folder / "report.json"),
        run_folder=str(run_folder),
        outputs=_outputs(out_dir, artifacts),
        outputs_partial=result.outputs_partial,
    )


def plan_outcome(report: PlanReport, folder: Path) -> RequestOutcome:
    """A plan's report (a request served as several jobs) as ``run_request`` returns it."""
    return RequestOutcome(
        run_id=report.plan_id,
        status=report.status,
        exit_code=None,
        message=f"{report.phases_completed} of {len(report.phases)} phases completed",
        strategy="plan",
        template=None,
        reasoning=visible("the request was split into: " + ", ".join(p.name for p in report.phases)),
        phases=tuple(
            visible(f"{p.name}: {p.status}" + (f" ({', '.join(p.deliverables)})" if p.deliverables else ""))
            for p in report.phases
        ),
        duration_s=round(report.wall_s, 3),
        tokens_used=report.tokens_used,
        report=str(folder / report.report_file),
        run_folder=str(folder),
        outputs_partial=any(p.outputs_partial for p in report.phases),
    )


def _part(final: dict[str, Any], key: str) -> dict[str, Any]:
    """One part of a served job's final view; RunError when the server kept none (the job never ran)."""
    part = final.get(key)
    if not isinstance(part, dict):
        raise RunError(f"the harness server's job ended without a {key}", hint=f"its status: {final.get('status')}")
    return part


# -- the operations, each a blocking call on the application layer ------------------------------
def _run_python(
    services: Services,
    code: str,
    files: dict[str, bytes],
    limits: LimitOverrides,
    notify: Notify,
    cancel: CancelToken,
    find: FindServer,
) -> ScriptOutcome:
    from harness.app.scripts import ScriptRun, exec_script

    client = find()
    if client is not None:
        from harness.mcp.remote import run_folder, run_job, script_body
        from harness.records import RunResult

        final = run_job(client, "/v1/runs", script_body(code, files, limits), _request_notes(notify), cancel)
        result = RunResult.model_validate(_part(final, "result"))
        return script_outcome(result, run_folder(final, result, services.settings.runs_dir))
    services.backend  # noqa: B018 - an engine that does not answer says so before a run folder is made
    with input_folder(files) as inputs:
        run = ScriptRun(source=code, inputs=inputs, limits=limits)
        outcome = exec_script(services, run, sink=_event_notes(notify), cancel=cancel)
    return script_outcome(outcome.result, outcome.run_dir)


def _run_request(
    services: Services,
    request: str,
    template: str | None,
    params: dict[str, str],
    files: dict[str, bytes],
    notify: Notify,
    cancel: CancelToken,
    find: FindServer,
) -> RequestOutcome:
    from harness.app import requests

    sink = _request_notes(notify)
    client = find()
    if client is not None:
        from harness.mcp.remote import report_folder, request_body, run_job

        body = request_body(request, template, params, files)
        final = run_job(client, "/v1/requests", body, sink, cancel)
        raw = _part(final, "report")
        from harness.orchestrate import PlanReport
        from harness.report import Report

        if final.get("kind") == "plan":
            plan = PlanReport.model_validate(raw)
            return plan_outcome(plan, services.settings.runs_dir / f"plan-{plan.plan_id}")
        report = Report.model_validate(raw)
        return request_outcome(report, report_folder(raw, services.settings.runs_dir / report.run_id))
    with input_folder(files) as inputs:
        req = requests.RequestIn(request=request, template=template, params=params, inputs=inputs)
        # As `harness run`: a request that names no scaffold may be several jobs, served as one plan.
        routed = requests.route(services, request) if template is None else None
        if routed is not None and routed.plan is not None:
            done = requests.run_plan(services, routed.plan, req, estimate=routed.estimate, sink=sink)
            return plan_outcome(done.report, done.output_dir)
        outcome = requests.run(services, req, sink=sink)
    if outcome.report is None:  # only a dry run or a declined confirmation, and this asks for neither
        raise RunError(f"request {outcome.run_id} was not run ({outcome.outcome})", run_id=outcome.run_id)
    return request_outcome(outcome.report, outcome.run_dir)


def _request_notes(post: Notify) -> Callable[[RequestEvent], None]:
    """A request's progress sink: how it is served, the gate, plan phases, and its runs' events."""
    run_notes = _event_notes(post)

    def on_event(event: RequestEvent) -> None:
        if event.kind == "run":
            run_notes(event.event)
            return
        if event.kind == "decided":
            note = f"serving with {event.decision.template or event.decision.strategy}: {event.decision.reasoning}"
        elif event.kind == "llm_call":
            note = f"LLM call {event.number}"
        elif event.kind == "vetted":
            note = f"the {event.policy} gate {'passed' if event.passed else 'refused'} the script"
        elif event.kind == "phase_changed":
            note = f"plan phase {event.phase}: {event.state}"
        elif event.kind == "finished":
            note = f"request {event.run_id} {event.status}"
        else:
            return  # the analysis, and the model's streamed text (too much, and untrusted)
        post(visible(note[:_NOTE_CHARS]))

    return on_event


def _check_code(code: str, policy: str) -> CheckOutcome:
    from harness.checks import gate, run_checks

    report = run_checks(code, policy)
    return CheckOutcome(
        passed=gate(report, policy).passed, policy=policy, counts=report.counts, findings=report.findings
    )


def _summary(scaffold: ScaffoldInfo) -> TemplateSummary:
    return TemplateSummary(
        name=scaffold.name,
        title=scaffold.title,
        workflow_type=scaffold.workflow_type,
        description=scaffold.description,
        parameters={
            name: f"{p.type}{' (required)' if p.required else ''}: {p.description}"
            for name, p in scaffold.parameters.items()
        },
        example_request=scaffold.examples[0].request if scaffold.examples else "",
    )


def _pending(services: Services) -> list[ReviewItem]:
    from harness.app.review import list_records

    records = sorted(list_records(services, "pending_review"), key=lambda r: r.created_at, reverse=True)
    return [
        ReviewItem(
            id=r.id,
            created_at=r.created_at,
            request=visible(r.request),
            strategy=r.strategy,
            base_scaffold=r.base_scaffold,
            model=r.model,
            gate_passed=r.gate_passed,
            attempts=len(r.attempts),
        )
        for r in records
    ]


# -- the server ----------------------------------------------------------------------------------
def build_server(services: Services, *, find: FindServer | None = None) -> MCPServer[Any]:
    """The MCP server with every harness tool, working on ``services`` (which the caller opens and closes).

    ``find`` says, at each run, which ``harness serve`` to send it to (None: run it in-process);
    by default the one that answers at ``HARNESS_URL`` or the default socket.
    """
    from harness.mcp.remote import find_server

    locate: FindServer = find if find is not None else find_server
    server = _Server(
        "harness",
        title="harness",
        instructions=_INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",  # the SDK logs every tool error at INFO; stderr is the agent's log, keep it short
    )
    # The SDK gives the root logger a handler; bandit's plugin loader would then report on stderr,
    # at every check, an optional plugin it cannot load (the CLI never shows it either).
    logging.getLogger("stevedore").setLevel(logging.CRITICAL)
    runs = ToolAnnotations(destructive_hint=False, open_world_hint=False)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=runs)
    async def run_python(
        ctx: Context[Any, Any],
        code: Code,
        files: Files = {},  # noqa: B006 - the SDK copies validated arguments; never mutated
        files_base64: Files64 = {},  # noqa: B006
        timeout_s: Timeout = None,
        memory: Memory = None,
    ) -> ScriptOutcome:
        """Run Python code once in a hardened, offline, throwaway container and return what came of it.

        Input files appear read-only at /input/NAME; write results under /output (small text
        outputs come back inline, every output is listed with its size). The status is the host's
        verdict (exit code, time-out, memory kill), never the script's claim.
        """
        with _ToolErrors():
            decoded = decode_inputs(files, files_base64)
        limits = LimitOverrides(timeout_s=timeout_s, memory=memory)
        return await _with_progress(
            ctx, lambda notify, cancel: _run_python(services, code, decoded, limits, notify, cancel, locate)
        )

    @server.tool(annotations=runs)
    async def run_request(
        ctx: Context[Any, Any],
        request: Annotated[str, Field(min_length=1, max_length=20_000, description="what to do, in plain language")],
        template: Annotated[str | None, Field(description="serve it with this scaffold (see list_templates)")] = None,
        params: Params = {},  # noqa: B006
        files: Files = {},  # noqa: B006
        files_base64: Files64 = {},  # noqa: B006
    ) -> RequestOutcome:
        """Serve a plain-language request: pick a scaffold (or generate a script when an API key is set),
        gate it, run it in the sandbox, and return the report's summary with the outputs.

        A generated script is kept for a person's review (see list_pending_reviews).
        """
        with _ToolErrors():
            decoded = decode_inputs(files, files_base64)
        return await _with_progress(
            ctx,
            lambda notify, cancel: _run_request(services, request, template, params, decoded, notify, cancel, locate),
        )

    @server.tool(annotations=reads)
    async def check_code(
        code: Annotated[str, Field(max_length=1_000_000, description="the Python source to check")],
        policy: Annotated[
            Literal["strict", "standard"], Field(description="strict: as for LLM output; standard: reviewed code")
        ] = "strict",
    ) -> CheckOutcome:
        """Run the static-check gate on code: every finding with line, message and a concrete fix."""
        with _ToolErrors():
            return await anyio.to_thread.run_sync(_check_code, code, policy)

    @server.tool(annotations=reads)
    def list_templates() -> list[TemplateSummary]:
        """List the scaffold library: reviewed templates that serve common requests without an LLM."""
        from harness.app.catalog import list_scaffolds

        with _ToolErrors():
            return [_summary(s) for s in list_scaffolds(services).scaffolds]

    @server.tool(annotations=reads)
    def show_template(
        name: Annotated[str, Field(min_length=1, max_length=200, description="a scaffold name from list_templates")],
    ) -> ScaffoldInfo:
        """Show one scaffold: parameters, inputs it reads, outputs it writes, checks and examples."""
        from harness.app.catalog import show_scaffold

        with _ToolErrors():
            return show_scaffold(services, name)

    @server.tool(annotations=reads)
    def list_pending_reviews() -> list[ReviewItem]:
        """List generated scripts waiting for a person's review, newest first."""
        with _ToolErrors():
            return _pending(services)

    return server


def serve(services: Services) -> None:
    """Serve MCP on this process's stdin and stdout until the client hangs up."""
    build_server(services).run("stdio")
