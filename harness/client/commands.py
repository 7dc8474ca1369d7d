"""``harness exec``, ``run``, ``check`` and ``analyze`` served by a running ``harness serve``.

``run_remote(args)`` answers None whenever the in-process CLI should do the work instead: no
server answers, ``--local``, ``--help``/``--debug``, ``run --output`` for a request that becomes a
plan (the server says so before any work), or anything the command line or the local files get
wrong. ``--output DIR`` otherwise downloads the run's outputs and collects them here under the
in-process rules (``harness.client.outputs``). The in-process CLI then produces its own usage
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
    attempt_line,
    check_verdict,
    drafted_lines,
    dry_run_verdict,
    egress_lines,
    emit,
    emit_json,
    error_line,
    exec_summary,
    findings_table,
    gate_refused_line,
    plain,
    plan_lines,
    plan_phase_line,
    plan_summary,
    problem_line,
    refusal,
    run_summary,
    script_listing,
)
from harness.client.endpoint import ClientError, Endpoint
from harness.client.exit_codes import exit_code_for_type
from harness.client.transport import Client, ProblemError, ServerLost
from harness.safe_text import visible

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
    _output_arguments(parser)
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


def _run_parser() -> _Parser:
    parser = _Parser(prog="harness run", add_help=False, allow_abbrev=False)
    parser.add_argument("request")
    parser.add_argument("--template", "-t")
    parser.add_argument("--param", "-p", action="append", default=[])
    parser.add_argument("--input", "-i", action="append", default=[])
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--yes", "-y", action="store_true")
    parser.add_argument("--strategy")
    parser.add_argument("--budget", type=int)
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--memory")
    parser.add_argument("--cpus", type=float)
    parser.add_argument("--pids", type=int)
    _output_arguments(parser)
    return parser


def _output_arguments(parser: _Parser) -> None:
    parser.add_argument("--output", "-o")
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--overwrite", action="store_true")


def _output_mode(opts: argparse.Namespace) -> str:
    """The ``--output`` mode, with the destination checked as in-process before anything runs; _Local if refused."""
    if opts.merge and opts.overwrite:
        raise _Local("--merge and --overwrite")
    mode = "merge" if opts.merge else "overwrite" if opts.overwrite else "new"
    if opts.output is not None:
        from pathlib import Path

        from harness.errors import HarnessError
        from harness.execution.outputs import check_destination

        try:
            check_destination(Path(opts.output), mode)  # type: ignore[arg-type]  # one of the three
        except HarnessError as exc:
            raise _Local(str(exc)) from None  # the in-process command refuses it in its own words
    return mode


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
    mode = _output_mode(opts)
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
    if opts.output is not None:
        from harness.client.outputs import fetch_outputs, merged_result

        folder, got = fetch_outputs(client, run_id, opts.output, mode, result.get("artifacts") or ())
        result = merged_result(result, folder, got)
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


# The kinds of a request's own events (harness.progress); every other kind is its run's event.
_REQUEST_KINDS = frozenset(
    {"analysed", "decided", "llm_call", "llm_text", "vetted", "drafted", "planned", "phase_changed", "finished"}
)


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise _Local(f"invalid --param {pair!r}")
        params[key.strip()] = value
    return params


def _confirm(question: str) -> bool:
    """Ask on the terminal as the in-process CLI asks (``Run it? [Y/n]: ``, Enter for yes)."""
    while True:
        sys.stdout.write(f"{question} [Y/n]: ")
        sys.stdout.flush()
        answer = sys.stdin.readline()
        if not answer:
            raise KeyboardInterrupt  # end of input: as the in-process prompt aborts
        answer = answer.strip().lower()
        if answer in ("", "y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        emit([error_line("invalid input")], err=True)


class _Request:
    """A request's events as the in-process ``harness run`` shows them, folded as they come."""

    def __init__(self, client: Client, run_id: str, opts: argparse.Namespace, *, ask_missing: bool = False) -> None:
        self.client, self.run_id, self.opts = client, run_id, opts
        self.ask_missing = ask_missing
        self.deferred: dict[str, Any] | None = None  # a decision missing parameters, to be asked for
        self.seen: dict[str, Any] = {}
        self.streaming = False  # an LLM call's tokens are being written
        self.display: _Display | None = None
        self.on_run: Callable[[dict[str, Any]], None] | None = None

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """Print what the in-process command prints for this event, when it prints it."""
        quiet = self.opts.json
        if kind == "llm_call" and not quiet:
            self._end_stream()
            emit([attempt_line(int(data["number"]))], err=True)
            self.streaming = True
        elif kind == "llm_text" and not quiet:
            sys.stderr.write(visible(str(data["text"]), lines=True))
            sys.stderr.flush()
        elif kind in ("analysed", "decided", "vetted"):
            self.seen[kind] = data
        elif kind == "drafted":
            self._end_stream()
            self.seen["drafted"] = data
            analysis, decision = self.seen["analysed"]["analysis"], self.seen["decided"]["decision"]
            missing = decision.get("missing") or ()
            if self.ask_missing and missing and all(m.get("kind") == "param" for m in missing):
                # In-process, the parameters are asked for before the analysis is shown.
                self.deferred = decision
                return
            emit(analysis_lines(analysis, decision), err=True)
            emit(drafted_lines(decision, data), err=True)
        elif kind == "confirm":
            self._end_stream()
            yes = _confirm("Run it?")
            self.client.call("POST", f"/v1/runs/{self.run_id}/confirm", {"run": yes})
        elif kind == "planned":
            self.seen["planned"] = data
            emit(plan_lines(data["phases"]), err=True)
        elif kind == "phase_changed":
            emit([plain(plan_phase_line(str(data["phase"]), str(data["state"])))], err=True)
        elif kind not in _REQUEST_KINDS and "planned" not in self.seen:
            if self.on_run is None:
                # The run display starts with the run, as in-process (a live view on a terminal).
                decision = self.seen.get("decided", {}).get("decision", {})
                title = f"{decision.get('template') or decision.get('strategy')} · run {self.run_id}"
                self.display = _Display(title)
                self.on_run = self.display.__enter__()
            self.on_run(data)

    def _end_stream(self) -> None:
        if self.streaming:
            sys.stderr.write("\n")
            self.streaming = False

    def close(self, *exc: Any) -> None:
        """End the live display, if one was drawn."""
        if self.display is not None:
            self.display.__exit__(*exc)
            self.display = None


def _run(client: Client, argv: list[str]) -> int:
    opts = _run_parser().parse_args(argv)
    opts.mode = _output_mode(opts)
    for path in opts.input:
        if not os.path.exists(path):
            raise _Local(f"input path {path} does not exist")
    body: dict[str, Any] = {
        "request": opts.request,
        "template": opts.template,
        "params": _parse_params(opts.param),
        "strategy": opts.strategy,
        "budget": opts.budget,
        "dry_run": opts.dry_run,
        "assume": opts.yes,
        # A plan's outputs are a folder per phase, made in-process: such a request is refused before any work.
        "allow_plan": opts.output is None,
        # As in-process: ask before running only a request no scaffold was named for, at a terminal.
        "confirm": not opts.yes and opts.template is None and not opts.dry_run and sys.stdin.isatty(),
    }
    limits = {"timeout_s": opts.timeout, "memory": opts.memory, "cpus": opts.cpus, "pids": opts.pids}
    body["limits"] = {k: v for k, v in limits.items() if v is not None}
    if opts.input:
        body["inputs_tar"] = _inputs_tar(opts.input)
        body["input_origins"] = [os.path.abspath(os.path.expanduser(p)) for p in opts.input]
    body["argv"] = ["harness", "run", *argv]
    # As in-process: at a terminal, without --yes, missing parameters are asked for (three rounds at most).
    asks = 3 if not opts.yes and sys.stdin.isatty() and sys.stderr.isatty() else 0
    while True:
        accepted = client.call("POST", "/v1/requests", body)
        shown = _Request(client, str(accepted["run_id"]), opts, ask_missing=asks > 0)
        final = _follow_request(client, accepted, shown)
        error = final.get("error") or {}
        if error.get("type") == "InvalidInput" and (error.get("data") or {}).get("name") == "allow_plan":
            raise _Local("a plan with --output")
        if shown.deferred is None or error.get("type") != "MissingInputs":
            return _request_end(client, final, shown, opts)
        # Refused for parameters only, before any work: ask for them, then submit the request again.
        body["params"] = {**body["params"], **_ask_params(shown.deferred)}
        asks -= 1


def _ask_params(decision: dict[str, Any]) -> dict[str, str]:
    """Ask for each missing parameter at the terminal, worded as the in-process ``run`` asks."""
    answers: dict[str, str] = {}
    for item in decision["missing"]:
        why = item.get("reason") or item.get("description") or ""
        line = (
            (str(decision.get("template") or "the script"), "bold"),
            (" needs ", ""),
            (str(item["name"]), "bold"),
            (visible(f": {why}" if why else ""), ""),
        )
        emit([line], err=True)
        suggestions = list(item.get("suggestions") or ())
        options = f" (one of: {', '.join(suggestions)})" if suggestions else ""
        default = item.get("sole") or (suggestions[0] if len(suggestions) == 1 else None)
        answers[str(item["name"])] = _prompt(visible(f"  {item['name']}{options}"), default)
    return answers


def _prompt(text: str, default: str | None) -> str:
    """A value typed at the terminal (on stderr, as ``typer.prompt(..., err=True)``); Enter takes ``default``."""
    while True:
        sys.stderr.write(f"{text} [{default}]: " if default is not None else f"{text}: ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            raise KeyboardInterrupt  # end of input: as the in-process prompt aborts
        answer = answer.rstrip("\r\n")
        if answer:
            return answer
        if default is not None:
            return default


def _follow_request(client: Client, accepted: dict[str, Any], shown: _Request) -> dict[str, Any]:
    """Show a request's events as they come; its final state."""
    run_id = str(accepted["run_id"])
    try:
        try:
            for event in client.events(str(accepted.get("events") or f"/v1/runs/{run_id}/events")):
                if event.event == "end":
                    final: dict[str, Any] = event.json()
                    return final
                if event.event != "gap":
                    shown.on_event(event.event, event.json())
        finally:
            shown.close(None, None, None)
    except KeyboardInterrupt:
        _cancel(client, run_id)
        raise
    except ServerLost:
        pass
    result: dict[str, Any] = client.call("GET", f"/v1/runs/{run_id}?wait=600", timeout=660)
    return result


def _request_end(client: Client, final: dict[str, Any], shown: _Request, opts: argparse.Namespace) -> int:
    """Print a finished request's outcome as the in-process ``run`` does; its exit code."""
    if final.get("status") == "cancelled":
        emit([plain(INTERRUPTED)], err=True)
        return 130
    error, report = final.get("error"), final.get("report")
    drafted = shown.seen.get("drafted") or {}
    if error:
        if error.get("type") == "GateRefused":
            findings_table(drafted.get("findings") or [], include_info=False, err=True)
            emit([gate_refused_line(str(final.get("run_dir") or drafted.get("run_dir", "")))], err=True)
            if opts.json and report is not None:
                emit_json(report)
            return 1
        raise ProblemError(error, int(error.get("status") or 500))
    if report is None:
        raise ProblemError({"type": "RunError", "title": "the server gave no report for this request"}, 500)
    if final.get("kind") == "plan":
        if opts.json:
            emit_json(report)
        else:
            emit(plan_summary(report, str(final.get("output_dir") or shown.seen["planned"]["output_dir"])))
        return 0 if report["status"] == "succeeded" else 1
    if report.get("outcome") == "dry_run":
        vetted = shown.seen.get("vetted") or {}
        script_listing(str(drafted.get("script") or ""))
        findings_table(drafted.get("findings") or [], include_info=True, err=True)
        emit([dry_run_verdict(bool(vetted.get("passed")), str(vetted.get("policy")))], err=True)
        return 0 if vetted.get("passed") else 1
    if report.get("outcome") == "declined":
        return 1
    if opts.output is not None and report["execution_result"]["status"] not in ("gate_failed", "refused"):
        from harness.client.outputs import fetch_outputs, merged_report

        deliverables = report["execution_result"].get("deliverables") or ()
        folder, got = fetch_outputs(client, str(final["run_id"]), opts.output, opts.mode, deliverables)
        report = merged_report(report, folder, got)
    if opts.json:
        emit_json(report)
    else:
        emit(run_summary(report, str(final.get("run_dir") or drafted.get("run_dir", ""))))
    return 0 if report["execution_result"]["status"] == "succeeded" else 1


COMMANDS: dict[str, Callable[[Client, list[str]], int]] = {
    "exec": _exec,
    "run": _run,
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
        code = exit_code_for_type(exc.type)
        if code == 2 and "--json" in args:
            # As in-process: a calling program learns what is missing from stdout, not from the error line.
            emit_json(refusal(exc.problem))
        return code
    except ClientError as exc:
        emit([error_line(str(exc))], err=True)
        return 1
    except KeyboardInterrupt:
        emit([plain(INTERRUPTED)], err=True)
        return 130
