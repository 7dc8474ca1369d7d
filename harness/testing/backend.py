"""A backend that runs nothing: it answers each run from a script of canned outcomes.

``ScriptedBackend`` lets the pipeline be tested on a machine with no container engine. It
is not a sandbox and never executes the script it is given. What it does share with the
Docker backend is everything on the host side of the container: the canned events travel
as the lines a script would print, through the same ``RunReader`` (so they get ``seq`` and
``t``, and a host-only kind printed by a script still arrives as ``unknown``); agent and
fetch requests are answered through the same handlers; canned output files are packed into
a tar and written by the real collector (so the output rules, conflicts included, are the
same); and the verdict comes from the same ``_decide``.
"""

from __future__ import annotations

import io
import json
import secrets
import tarfile
import threading
import time
from collections.abc import Callable, Iterable

from pydantic import BaseModel, ConfigDict, Field

from harness.events import (
    SCHEMA_VERSION,
    Event,
    OutputEvent,
    RunFinished,
    RunStarted,
)
from harness.execution.backend import AgentHandler, Backend, EventCallback, FetchHandler, answer_request
from harness.execution.docker import _decide, _input_mounts
from harness.execution.limits import Limits
from harness.execution.outputs import collect_run_outputs, prepare_destination
from harness.execution.stream import RunReader
from harness.records import PolicyReceipt, RunResult, RunSpec, RunStatus

__all__ = ["SCRIPTED_IMAGE", "Outcome", "ScriptedBackend"]

SCRIPTED_IMAGE = "scripted (no container)"


class Outcome(BaseModel):
    """What one scripted run prints, exits with and leaves in /output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: tuple[Event, ...] = Field(
        (), description="printed in order; an output event is a plain line on its stream, any other kind a JSON line"
    )
    stderr: str = Field("", description="printed on stderr after the events (a traceback, say)")
    exit_code: int = 0
    outputs: dict[str, bytes] = Field(default_factory=dict, description="files left in /output, by relative path")
    status: RunStatus | None = Field(
        None, description="force a verdict the exit code cannot give (timed_out, oom_killed, error); None: decided"
    )
    message: str = Field("", description="the forced verdict's message (with ``status`` only)")


Script = Callable[[RunSpec], Outcome] | Iterable[Outcome]


class ScriptedBackend(Backend):
    """Answers ``run`` from canned outcomes: a callable ``spec -> Outcome``, or outcomes taken in order."""

    def __init__(self, script: Script, *, limits: Limits | None = None) -> None:
        self._answer_for: Callable[[RunSpec], Outcome] | None = script if callable(script) else None
        self._queue: list[Outcome] = [] if callable(script) else list(script)
        self.limits = limits or Limits()
        self.specs: list[RunSpec] = []  # every spec run, in order, for tests to inspect
        self.closed = False
        self._lock = threading.Lock()  # a plan runs phases from several threads
        self._running: set[str] = set()
        self._cancelled: set[str] = set()
        self._interrupted: set[str] = set()

    def run(
        self,
        spec: RunSpec,
        *,
        on_event: EventCallback | None = None,
        on_agent: AgentHandler | None = None,
        on_fetch: FetchHandler | None = None,
    ) -> RunResult:
        """Play the next outcome for ``spec``; the host side (events, handlers, outputs, verdict) is real."""
        if self.closed:
            raise RuntimeError("this backend is closed")
        with self._lock:
            self._running.add(spec.run_id)
        try:
            return self._play(spec, on_event, on_agent, on_fetch)
        finally:
            with self._lock:
                self._running.discard(spec.run_id)
                self._cancelled.discard(spec.run_id)
                self._interrupted.discard(spec.run_id)

    def cancel(self, run_id: str) -> bool:
        """Stop playing run ``run_id``: the events not yet played are not, and it ends ``cancelled``."""
        with self._lock:
            if run_id not in self._running:
                return False
            self._cancelled.add(run_id)
            return True

    def interrupt(self, run_id: str) -> bool:
        """Stop playing run ``run_id`` but keep its outputs, as the supervisor's stop does: it ends ``interrupted``."""
        with self._lock:
            if run_id not in self._running:
                return False
            self._interrupted.add(run_id)
            return True

    def _is_cancelled(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._cancelled

    def _is_interrupted(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._interrupted

    def _play(
        self,
        spec: RunSpec,
        on_event: EventCallback | None,
        on_agent: AgentHandler | None,
        on_fetch: FetchHandler | None,
    ) -> RunResult:
        outcome = self._next(spec)
        limits = spec.limits or self.limits
        mounts = _input_mounts(spec.inputs)  # a missing input fails here, as it does before a container starts
        out_dir = (
            None if spec.output_dir is None else prepare_destination(spec.output_dir, spec.output_mode, spec.run_id)
        )
        nonce = secrets.token_hex(16)
        reader = RunReader(
            nonce=nonce,
            stdout_cap=limits.stdout_cap,
            archive_cap=2 * limits.output_size + 16 * 1024 * 1024,
            on_event=on_event,
        )
        reader.emit(RunStarted(run_id=spec.run_id, image=SCRIPTED_IMAGE, pooled=False))
        fetcher = on_fetch if spec.egress else None  # as the Docker backend: no grant, no fetches
        deadline = time.monotonic() + limits.timeout_s  # a fetch is bounded by the run's end, as in a real run
        for event in outcome.events:
            if self._is_cancelled(spec.run_id) or self._is_interrupted(spec.run_id):
                break
            stream, line = _line(event)
            reader.feed(stream, line)
            while reader.host_requests:
                # Answered as the Docker backend answers; the reply itself would go to the script's stdin.
                reader.emit(answer_request(reader.host_requests.pop(0), on_agent, fetcher, deadline)[1])
        if outcome.stderr:
            reader.feed(2, outcome.stderr.encode())
        t_stream = reader.elapsed()
        stopped = self._is_interrupted(spec.run_id) and not self._is_cancelled(spec.run_id)
        end = {"v": 1, "kind": "_harness_end", "nonce": nonce, "exit_code": outcome.exit_code, "interrupted": stopped}
        trailer = json.dumps({"v": 1, "kind": "_harness_sent", "nonce": nonce}).encode() + b"\n"
        reader.feed(1, b"\n" + json.dumps(end).encode() + b"\n" + _tar(outcome.outputs) + trailer)
        reader.finish()
        collected = collect_run_outputs(reader, out_dir, limits)
        if stopped:
            collected.leave("the script was stopped because it was interrupted: its outputs are what it had written")
        if self._is_cancelled(spec.run_id):
            status, message = _decide(outcome.exit_code, False, "cancelled", "", limits, reader)
        elif stopped:
            status, message = _decide(outcome.exit_code, False, "", "", limits, reader, stopped_for="interrupted")
        elif outcome.status is not None:
            status, message = outcome.status, outcome.message or f"scripted: {outcome.status}"
        else:
            status, message = _decide(outcome.exit_code, False, "", "", limits, reader)
        duration = reader.elapsed()
        reader.emit(RunFinished(run_id=spec.run_id, status=status, exit_code=outcome.exit_code, duration_s=duration))
        return RunResult(
            run_id=spec.run_id,
            status=status,
            exit_code=outcome.exit_code,
            message=message,
            image=SCRIPTED_IMAGE,
            pooled=False,
            duration_s=duration,
            first_event_s=reader.first_event_s,
            timings={"stream_s": t_stream, "collect_s": duration - t_stream},
            events_count=reader.seq,
            events=tuple(reader.events),
            events_dropped=reader.events_dropped,
            stdout_bytes=reader.stdout_bytes,
            stderr_bytes=reader.stderr_bytes,
            stdout_tail=reader.stdout_tail,
            stderr_tail=reader.stderr_tail,
            output_dir=out_dir,
            artifacts=tuple(collected.artifacts),
            output_warnings=tuple(collected.warnings),
            output_conflicts=tuple(collected.conflicts),
            outputs_partial=collected.partial,
            # Says plainly that no container ran, so a scripted result can never pass for a sandboxed one.
            policy=PolicyReceipt(
                network="none (scripted: nothing ran)",
                runtime="scripted",
                seccomp="none (scripted: nothing ran)",
                input_mode="none" if not mounts else "bind_read_only",
                env_keys=tuple(sorted(spec.env)),
                egress=spec.egress,
                limits=limits.receipt(),
            ),
        )

    def close(self) -> None:
        """Refuse further runs; there is nothing else to release."""
        self.closed = True

    def _next(self, spec: RunSpec) -> Outcome:
        with self._lock:
            self.specs.append(spec)
            answer_for = self._answer_for
            if answer_for is None:
                if not self._queue:
                    raise RuntimeError(f"the scripted backend has no outcome left for run {spec.run_id}")
                return self._queue.pop(0)
        # Outside the lock: the callable stands for the script running, and may cancel the run meanwhile.
        return answer_for(spec)


def _line(event: Event) -> tuple[int, bytes]:
    """The line a script would print for ``event``, and its stream (1 stdout, 2 stderr)."""
    if isinstance(event, OutputEvent):
        return (2 if event.stream == "stderr" else 1), event.text.encode() + b"\n"
    body = event.model_dump(mode="json", exclude={"seq", "t"})
    return 1, json.dumps({"v": SCHEMA_VERSION, **body}).encode() + b"\n"


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
