"""``harness exec``, ``check`` and ``analyze`` served by a running ``harness serve``.

``run_remote(args)`` answers None whenever the in-process CLI should do the work instead: no
server answers, ``--local``, ``--help``/``--debug``, an option this path does not carry
(``--output`` and its modes: the outputs would have to be fetched and merged here), or anything
the command line or the local files get wrong. The in-process CLI then produces its own usage
error or ``Error:`` line, so both paths fail the same way by construction. Otherwise the
command goes to the server and prints what the in-process command prints, through the same
functions (``harness.cli.render``), with the same exit codes.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import signal
import sys

from harness.cli.render import (
    RunView,
    analysis_lines,
    analyze_lines,
    check_verdict,
    egress_lines,
    emit,
    emit_json,
    error_line,
    exec_summary,
    findings_table,
    plain,
    problem_line,
)
from harness.client.endpoint import ClientError, Endpoint
from harness.client.exit_codes import exit_code_for_type
from harness.client.transport import Client, ProblemError, ServerLost

# Not typing.TYPE_CHECKING: the thin client's start-up would pay for importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["COMMANDS", "run_remote"]

INTERRUPTED = "Interrupted: containers of this run were removed."
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # the script names the server accepts


class _Local(Exception):
    """This invocation is for the in-process CLI."""


class _Parser(argparse.ArgumentParser):
    """argparse that hands anything it would complain about to the in-process CLI."""

    def error(self, message: str) -> Any:
        raise _Local(message)


def _exec_parser() -> _Parser:
    parser = _Parser(prog="harness exec", add_help=False, allow_abbrev=False)
    parser.add_argument("script", nargs="?")
    parser.add_argument("--generated")
    parser.add_argument("--input", "-i", action="append", default=[])
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--memory")
    parser.add_argument("--cpus", type=float)
    parser.add_argument("--pids", type=int)
    parser.add_argument("--env", "-e", action="append", default=[])
    parser.add_argument("--allow-host", action="append", default=[])
    parser.add_argument("--json", action="store_true")
    return parser


def _check_parser() -> _Parser:
    parser = _Parser(prog="harness check", add_help=False, allow_abbrev=False)
    parser.add_argument("script")
    parser.add_argument("--policy", default="strict")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--info", action="store_true")
    return parser


def _analyze_parser() -> _Parser:
    parser = _Parser(prog="harness analyze", add_help=False, allow_abbrev=False)
    parser.add_argument("request")
    parser.add_argument("--json", action="store_true")
    return parser


def _inputs_tar(paths: list[str]) -> str:
    """The inputs as one tar (each path under its own name, as it would be mounted at /input/NAME), base64."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            tar.add(path, arcname=os.path.basename(os.path.normpath(path)))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _Local(f"invalid --env {pair!r}")
        env[key] = value
    return env


def _exec(client: Client, argv: list[str]) -> int:
    opts = _exec_parser().parse_args(argv)
    for path in opts.input:
        if not os.path.exists(path):
            raise _Local(f"input path {path} does not exist")
    body: dict[str, Any] = {"env": _parse_env(opts.env), "allow_hosts": opts.allow_host}
    limits = {"timeout_s": opts.timeout, "memory": opts.memory, "cpus": opts.cpus, "pids": opts.pids}
    body["limits"] = {k: v for k, v in limits.items() if v is not None}
    if opts.generated is not None:
        body["generated_id"] = opts.generated  # the server reads the reviewed bytes; no source travels
        name = "main.py"
    elif opts.script is not None and os.path.isfile(opts.script):
        with open(opts.script, encoding="utf-8", errors="replace") as handle:
            body["source"] = handle.read()
        # As the in-process command: the file's own name (the run makes it main.py when it is not *.py).
        name = body["name"] = os.path.basename(opts.script)
    else:
        raise _Local("no script")
    if not _NAME.match(name):
        raise _Local(f"the server takes no script named {name!r}")
    if opts.input:
        body["inputs_tar"] = _inputs_tar(opts.input)
    accepted = client.call("POST", "/v1/runs", body)
    run_id = str(accepted["run_id"])
    title = f"{opts.generated or name} · run {run_id}"
    finished = _follow(client, accepted, _run_display(title))
    if finished.get("error"):
        raise ProblemError(finished["error"], int(finished["error"].get("status") or 500))
    result = finished.get("result")
    if result is None:  # cancelled before it ran
        emit([plain(INTERRUPTED)], err=True)
        return 130
    if opts.json:
        emit_json(result)
    else:
        emit(exec_summary(result, _run_dir(finished, result)))
        dropped = int(finished.get("events_dropped") or 0)
        if dropped:
            emit([plain(f"  {dropped} events past the log's caps were counted, not kept")])
        emit([plain(line) for line in egress_lines(finished.get("egress") or [])])
    return 0 if result["status"] == "succeeded" else 1


def _run_dir(finished: dict[str, Any], result: dict[str, Any]) -> str:
    """The server's run folder: as it says, else the folder its default output went to."""
    if finished.get("run_dir"):
        return str(finished["run_dir"])
    if result.get("output_dir"):
        return os.path.dirname(os.path.normpath(str(result["output_dir"])))
    return f"runs/{result['run_id']}"


class _Display:
    """The run display on stderr: the rich live view on a terminal (rich loads only then), lines otherwise."""

    def __init__(self, title: str) -> None:
        self.live: Any = None
        self.view: RunView
        if sys.stderr.isatty():
            from harness.cli.console import err_console
            from harness.cli.display import RunDisplay

            self.view = self.live = RunDisplay(err_console, title)
        else:
            self.view = RunView(title)

    def __enter__(self) -> Callable[[dict[str, Any]], None]:
        if self.live is not None:
            self.live.__enter__()
        return self.view.on_event

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)


def _run_display(title: str) -> _Display:
    return _Display(title)


def _follow(client: Client, accepted: dict[str, Any], display: _Display) -> dict[str, Any]:
    """Show a job's events as they come; its final state (the ``end`` event, or a wait for the result)."""
    run_id = str(accepted["run_id"])
    events = str(accepted.get("events") or f"/v1/runs/{run_id}/events")
    try:
        with display as on_event:
            for event in client.events(events):
                if event.event == "end":
                    final: dict[str, Any] = event.json()
                    return final
                if event.event == "gap":
                    continue
                on_event(event.json())
    except KeyboardInterrupt:
        _cancel(client, run_id)
        raise
    except ServerLost:
        pass
    # The stream gave up before its end: the job still ends with a result.
    result: dict[str, Any] = client.call("GET", f"/v1/runs/{run_id}?wait=600", timeout=660)
    return result


def _cancel(client: Client, run_id: str) -> None:
    """Cancel the run on the server (its container goes with it) and wait for it to end, briefly."""
    try:
        client.call("POST", f"/v1/runs/{run_id}/cancel", {}, timeout=30)
        client.call("GET", f"/v1/runs/{run_id}?wait=30", timeout=40)
    except ClientError:
        pass


def _check(client: Client, argv: list[str]) -> int:
    opts = _check_parser().parse_args(argv)
    if not os.path.isfile(opts.script):
        raise _Local("no script")
    try:
        with open(opts.script, "rb") as handle:
            source = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Local(str(exc)) from None
    if source.startswith("\ufeff"):
        raise _Local("a byte-order mark: the checks read the bytes in-process")
    answer = client.call("POST", "/v1/check", {"source": source, "policy": opts.policy})
    if "gate" not in answer:
        raise _Local("the server's check answer carries no gate decision")
    gate = answer["gate"]
    # The contract's shape is the CheckReport's fields beside "gate" (and "passed", already one of them).
    report = answer["report"] if "report" in answer else {k: v for k, v in answer.items() if k != "gate"}
    if opts.json:
        # As the in-process command prints it: plain JSON, coloured or not.
        sys.stdout.write(json.dumps({"report": report, "gate": gate}, indent=2, ensure_ascii=True) + "\n")
        return 0 if gate["passed"] else 1
    findings_table(report["findings"], include_info=opts.info)
    counts = report.get("counts") or {}
    emit([check_verdict(os.path.basename(opts.script), gate["passed"], opts.policy, counts, report["durations_ms"])])
    return 0 if gate["passed"] else 1


def _analyze(client: Client, argv: list[str]) -> int:
    opts = _analyze_parser().parse_args(argv)
    payload = client.call("POST", "/v1/analyze", {"request": opts.request})
    if "plan" not in payload:
        raise _Local("the server's analysis carries no plan")
    answer = {"analysis": payload["analysis"], "decision": payload["decision"], "plan": payload["plan"]}
    # Exit as `harness run` would: 2 when the request would be refused for something missing.
    code = 2 if answer["decision"].get("missing") and answer["plan"] is None else 0
    if opts.json:
        emit_json(answer)
        return code
    emit(analysis_lines(answer["analysis"], answer["decision"], answer.get("plan")), err=True)
    emit([plain(line) for line in analyze_lines(answer["analysis"], answer["decision"], answer["plan"])])
    return code


COMMANDS: dict[str, Callable[[Client, list[str]], int]] = {
    "exec": _exec,
    "check": _check,
    "analyze": _analyze,
}


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so the run is cancelled on the server.
    raise KeyboardInterrupt


def run_remote(args: list[str], endpoint: Endpoint) -> int | None:
    """Serve ``args`` through the server at ``endpoint``; None when the in-process CLI should serve them."""
    client = Client(endpoint)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return COMMANDS[args[0]](client, args[1:])
    except _Local:
        return None
    except ProblemError as exc:
        if exc.not_taken:
            # Nothing was accepted, so nothing happened on the server: the in-process command does the work
            # (a draining server), or says what is wrong in the CLI's words (the server's schema is not the CLI's).
            return None
        emit([error_line(problem_line(exc.problem))], err=True)
        return exit_code_for_type(exc.type)
    except ClientError as exc:
        emit([error_line(str(exc))], err=True)
        return 1
    except KeyboardInterrupt:
        emit([plain(INTERRUPTED)], err=True)
        return 130
