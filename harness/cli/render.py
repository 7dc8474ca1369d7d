"""What the CLI prints, as plain data, shared by the in-process commands and the thin client.

Standard library only: the thin client renders a server's answers (plain JSON dicts) with these
functions, and must start without rich, pydantic or the models. A line is a tuple of
``(text, style)`` segments; ``emit`` draws it with rich only when the stream is a terminal, and
otherwise writes exactly what rich writes off a terminal (no styles, tabs expanded), so the
output of both paths is the same bytes.

Every string that a script, its events or an LLM controlled goes through ``visible`` here.
"""

from __future__ import annotations

import json
import sys
import time

from harness.safe_text import visible

# Not typing.TYPE_CHECKING: the thin client's start-up would pay for importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path
    from typing import Any, TextIO

__all__ = [
    "Line",
    "RunView",
    "analysis_lines",
    "analyze_lines",
    "attempt_line",
    "check_verdict",
    "drafted_lines",
    "dry_run_verdict",
    "egress_lines",
    "emit",
    "emit_json",
    "error_line",
    "exec_summary",
    "findings_table",
    "fix_text",
    "gate_refused_line",
    "missing_text",
    "plain",
    "plan_lines",
    "plan_phase_line",
    "plan_summary",
    "problem_line",
    "refusal",
    "run_summary",
    "script_listing",
]

Line = tuple[tuple[str, str], ...]
_STATUS_STYLE = {"succeeded": "green", "failed": "red"}
_SHOWN_LINES = 200  # plain output lines echoed; the rest stay in events.jsonl


def plain(text: str) -> Line:
    """A line of one unstyled segment."""
    return ((text, ""),)


def _stream(err: bool) -> TextIO:
    return sys.stderr if err else sys.stdout


def emit(lines: Iterable[Line], *, err: bool = False) -> None:
    """Print ``lines`` on stdout (or stderr): with rich's styles on a terminal, as plain text otherwise."""
    stream = _stream(err)
    if stream.isatty():
        from rich.text import Text

        from harness.cli.console import err_console, out_console

        console = err_console if err else out_console
        for line in lines:
            console.print(Text.assemble(*line), highlight=False)
        return
    # What rich writes off a terminal: the text, tabs expanded to its 8-column stops.
    stream.write("".join("".join(text for text, _ in line).expandtabs(8) + "\n" for line in lines))
    stream.flush()


def emit_json(payload: Any) -> None:
    """``payload`` as indented ASCII JSON on stdout (coloured on a terminal), as ``--json`` prints it."""
    text = json.dumps(payload, ensure_ascii=True)
    if sys.stdout.isatty():
        from harness.cli.console import out_console

        out_console.print_json(text, ensure_ascii=True)
        return
    # ASCII, so C1 controls and bidi overrides in script-controlled strings cannot reach a terminal.
    sys.stdout.write(json.dumps(json.loads(text), indent=2, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> Line:
    """The one ``Error: ...`` line an escaping error becomes (the message may quote a script: shown, not obeyed)."""
    return (("Error:", "bold red"), (" ", ""), (visible(message), ""))


def missing_text(item: Mapping[str, Any]) -> str:
    """What a missing input (``MissingInput`` as JSON) is, and the flag that supplies it."""
    kind = item.get("kind", "param")
    if kind == "param":
        if item.get("reason"):
            suggestions = item.get("suggestions") or ()
            options = f"; one of: {', '.join(suggestions)}" if suggestions else ""
            return f"--param {item['name']}=<{item.get('type') or 'value'}>: {item['reason']}{options}"
        example = f" (e.g. {item['example']!r})" if item.get("example") is not None else ""
        return f"--param {item['name']}=<{item.get('type') or 'value'}>{example}: {item.get('description', '')}"
    if kind == "unsupported":
        return f"a scaffold that can do what was asked ({item.get('description', '')}); none of the bundled ones does"
    if kind == "template":
        return f"a scaffold for --strategy {item.get('strategy')}: pass --template NAME"
    if kind == "llm":
        return f"an LLM for --strategy {item.get('strategy')}: export ANTHROPIC_API_KEY=sk-ant-..."
    return (
        "a scaffold: pass --template NAME (see `harness templates list`), or configure an LLM "
        "(ANTHROPIC_API_KEY) to generate a script"
    )


# How the CLI supplies each input a use case may ask for.
_GIVE = {
    "inputs": "check the path given with --input",
    "output": "pick another --output",
    "output_mode": "use --merge to add new files only, or --overwrite to replace a folder harness made",
    "output_merge": "only a folder harness made can be replaced; use --merge to add new files, or pick a new folder",
    "llm": "export ANTHROPIC_API_KEY=sk-ant-... (or pass --template NAME to use a scaffold offline)",
    "budget": "raise it with --budget or HARNESS_BUDGET; what was made so far is kept",
    "script": "give the path of a Python file, or --generated ID",
    "against": "pass --against SCAFFOLD",
    "hosts": "pass --allow-host HOST, or --replace alone to revoke the grant",
}


def fix_text(fix: Mapping[str, Any]) -> str | None:
    """The flags or commands that carry out a fix (``action``, ``target``, ``values``); None when a hint says it all."""
    target, values = str(fix.get("target", "")), list(fix.get("values") or ())
    if fix.get("action") == "give_input" and target.startswith("param:") and len(values) == 3:
        kind, example, description = values
        return f"pass --param {target[6:]}=<{kind}> (e.g. {example}): {description}"
    if fix.get("action") == "give_input":
        return _GIVE.get(target)
    if fix.get("action") == "review":
        return f"review it: harness review show {target}, then harness review approve {target}"
    if fix.get("action") == "setup_runtime":
        return f"set it up as root with: harness sandbox setup-runtime {target} (or pass --runtime auto)"
    if fix.get("action") == "approve_egress" and values:
        return f"approve it with the egress it needs: harness review approve {target} --allow-host {values[0]}"
    return None


def problem_line(problem: Mapping[str, Any]) -> str:
    """The line after ``Error:`` for an error answered as problem JSON, worded as the CLI words the error."""
    raw = problem.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    title = str(problem.get("title") or problem.get("detail") or f"HTTP {problem.get('status', '?')}")
    missing = data.get("missing") if problem.get("type") == "MissingInputs" else None
    if missing:
        return f"cannot run this request yet: missing {missing_text(missing[0])}"
    hint = fix_text(data["fix"]) if isinstance(data.get("fix"), dict) else None
    if hint is not None:
        return f"{title}: {hint}"
    plain_hint = str(problem.get("hint") or "")
    return f"{title}: {plain_hint}" if plain_hint and not title.endswith(plain_hint) else title


def egress_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One summary line per host a run fetched from through the host."""
    lines = []
    for row in rows:
        refused = f", {row['refused']} refused" if row["refused"] else ""
        host = visible(str(row["host"]))
        lines.append(f"  egress: {host}: {row['requests']} request(s), {row['bytes_in']} bytes in{refused}")
    return lines


def _runtime_note(result: Mapping[str, Any]) -> str:
    """`` under runsc``: the runtime the engine reported for the run (absent from older results)."""
    policy = result.get("policy")
    runtime = policy.get("runtime") if isinstance(policy, dict) else None
    return f" under {visible(str(runtime))}" if runtime else ""


def exec_summary(result: Mapping[str, Any], run_dir: str | Path) -> list[Line]:
    """A short human summary of a script run (``RunResult`` as JSON); what the script named is made visible."""
    status = str(result["status"])
    style = _STATUS_STYLE.get(status, "yellow")
    lines: list[Line] = [
        (
            (status, f"bold {style}"),
            (
                f" (exit code {result['exit_code']}) in {result['duration_s']:.2f}s"
                f" · {result['events_count']} events · {'pooled' if result['pooled'] else 'cold'} container"
                f"{_runtime_note(result)}",
                "",
            ),
        )
    ]
    if status != "succeeded":
        lines.append(plain(f"  {visible(str(result['message']))}"))
    for artifact in result["artifacts"]:
        note = f" - {artifact['description']}" if artifact.get("description") else ""
        lines.append(plain(visible(f"  {artifact['path']} ({artifact['size']} bytes){note}")))
    if result.get("outputs_partial"):
        conflicts = result.get("output_conflicts") or ()
        skipped = f", {len(conflicts)} already there" if conflicts else ""
        lines.append((("  ", ""), ("outputs partial", "yellow"), (f": not everything was collected{skipped}", "")))
    for warning in result.get("output_warnings") or ():
        lines.append((("  ", ""), ("warning:", "yellow"), (" ", ""), (visible(str(warning)), "")))
    if result.get("output_dir"):
        lines.append(plain(visible(f"  outputs: {result['output_dir']}")))
    lines.append(plain(visible(f"  run folder: {run_dir}")))
    return lines


def check_verdict(
    name: str, passed: bool, policy: str, counts: Mapping[str, int], durations_ms: Mapping[str, float]
) -> Line:
    """``NAME: gate passed under the strict policy (0 error, ...; 12 ms)``."""
    verdict = ("passed", "green") if passed else ("failed", "red")
    summary = ", ".join(f"{n} {severity}" for severity, n in counts.items())
    total = durations_ms.get("total", 0.0)
    return ((f"{visible(name)}: gate ", ""), verdict, (f" under the {policy} policy ({summary}; {total:.0f} ms)", ""))


def analysis_lines(
    analysis: Mapping[str, Any], decision: Mapping[str, Any], plan: Mapping[str, Any] | None = None
) -> list[Line]:
    """The analysis, decision and parameters of a request (``Analysis``/``Decision`` as JSON), for stderr.

    A request served by a plan is dispatched as the plan's (``hybrid``), each phase with its own
    strategy beneath; the decision for the request as one script would mislead there.
    """
    estimate = analysis["estimate"]
    budget = f" of a {estimate['token_budget']} budget" if estimate.get("token_budget") else ""
    # A prior splits out the container's share; a median of past runs has it inside.
    basis = (
        estimate.get("basis", "past runs")
        if estimate.get("from_history")
        else f"{estimate['coordination_s']:g}s of it container and coordination"
    )
    lines: list[Line] = [
        (
            ("analysis", "bold"),
            (
                f" {analysis['workflow_type']} (confidence {analysis['workflow_confidence']:.2f}), "
                f"{analysis['complexity']}, ~{estimate['duration_s']:g}s ({basis}), "
                f"{estimate['tokens']} tokens{budget}",
                "",
            ),
        )
    ]
    if plan is not None:
        phases = plan["phases"]
        shown = ", ".join(f"{row['phase']} ({row.get('strategy') or 'decided when run'})" for row in phases)
        lines.append(
            (
                ("decision", "bold"),
                (f" {plan.get('dispatch', 'hybrid')}", ""),
                (f": a plan of {len(phases)} phases in {phases[-1]['stage']} stage(s): {visible(shown)}", ""),
            )
        )
        return lines
    target: tuple[tuple[str, str], ...] = ((" ", ""), (decision["template"], "bold")) if decision["template"] else ()
    lines.append(
        (
            ("decision", "bold"),
            (f" {decision['strategy']}", ""),
            *target,
            (f" (confidence {decision['confidence']:.2f}): {visible(str(decision['reasoning']))}", ""),
        )
    )
    if decision.get("params"):
        shown = ", ".join(f"{k}={v!r}" for k, v in decision["params"].items())
        lines.append((("parameters", "bold"), (f" {visible(shown)}", "")))
    return lines


def analyze_lines(
    analysis: Mapping[str, Any], decision: Mapping[str, Any], plan: Mapping[str, Any] | None
) -> list[str]:
    """The details ``harness analyze`` prints on stdout (its ``--json`` payload, as text)."""
    lines = [f"  type evidence: {feature}" for feature in analysis["workflow_features"]]
    lines += [f"  complexity: {feature}" for feature in analysis["complexity_features"]]
    if analysis.get("role_confidence"):
        roles = ", ".join(f"{name} ({c:.2f})" for name, c in analysis["role_confidence"].items())
        lines.append(f"  roles: {roles}")
    if analysis.get("llm"):
        lines.append(visible(f"  LLM: {analysis['llm']}"))
    for candidate in analysis["candidates"][:3]:
        lines.append(
            f"  candidate {candidate['name']}: confidence {candidate['confidence']:.2f}, "
            f"score {candidate['score']:.2f}, matched {', '.join(candidate['matched_terms']) or 'nothing'}"
        )
    if plan is None:
        lines += [f"  missing: {visible(missing_text(item))}" for item in decision["missing"]]
    for row in plan["phases"] if plan else ():
        together = " (in parallel)" if row["parallel"] else ""
        after = f", after {', '.join(row['depends_on'])}" if row["depends_on"] else ""
        how = f" [{row['strategy']}]" if row.get("strategy") else ""
        lines.append(visible(f"  plan stage {row['stage']}{together}: {row['phase']}{how} ← {row['request']!r}{after}"))
    estimate = plan["estimate"] if plan else None
    if estimate is not None:
        lines.append(
            f"  plan estimate: {estimate['duration_s']:g}s ({estimate['sequential_s']:g}s one after another; "
            f"{estimate['coordination_s']:g}s coordination), {estimate['tokens']} tokens; {estimate['basis']}"
        )
    return lines


class RunView:
    """A run's state folded from its events (``Event`` as JSON), and the line each event is worth.

    Off a terminal this is the whole display: each line goes to stderr as it comes. The rich live
    display (``harness.cli.display.RunDisplay``) draws the same state on a terminal.
    """

    def __init__(self, title: str) -> None:
        self.title = visible(title)
        self.started = time.monotonic()
        self.phases: dict[str, str] = {}
        self.current: str | None = None
        self.done: float = 0
        self.total: float | None = None
        self.message = ""
        self.last_log = ""
        self.plain_lines = 0

    def on_event(self, event: Mapping[str, Any]) -> None:
        """Fold one event in; print its line, if it is worth one."""
        line = visible(self.fold(event))
        if line:
            emit([plain(line)], err=True)

    def fold(self, event: Mapping[str, Any]) -> str:
        """Fold one event into the state; the line it is worth ("" for none), not yet made visible."""
        kind = event.get("kind")
        if kind == "run_started" and event.get("runtime"):
            # The boundary this run got, as the engine reported it: on the display's first line.
            self.title = f"{self.title} · {visible(str(event['runtime']))}"
            return ""
        if kind == "phase":
            name = str(event["name"])
            if event["status"] == "start":
                self.phases[visible(name)] = "running"
                self.current, self.done, self.total, self.message = visible(name), 0, None, ""
                return f"▶ {name}"
            failed = event.get("ok") is False
            self.phases[visible(name)] = "failed" if failed else "done"
            return f"{'✗' if failed else '✓'} {name}"
        if kind == "progress":
            self.done, self.total, self.message = event["done"], event.get("total"), visible(str(event["message"]))
            return ""
        if kind == "log":
            self.last_log = visible(f"{event['level']}: {event['message']}")
            return self.last_log if event["level"] in ("warning", "error") else ""
        if kind == "output":
            self.plain_lines += 1
            if self.plain_lines <= _SHOWN_LINES:
                return f"{'│' if event['stream'] == 'stdout' else '!'} {event['text']}"
            if self.plain_lines == _SHOWN_LINES + 1:
                return "… more output is in the run folder's events.jsonl"
            return ""
        if kind == "agent_request":
            self.last_log = visible(f"asking agent {event['role']}…")
            return self.last_log
        if kind == "fetch_reply":
            # Every request to the network is worth a line: it is what a reviewer granted.
            if event["ok"]:
                return f"↗ {event['method']} {event['host']} → {event['status']} ({event['bytes_in']} bytes)"
            return f"✗ {event['method']} {event.get('host') or '?'} refused: {event['error']}"
        if kind == "unknown":
            return f"? ignored event: {event['reason']}"
        return ""


_SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}


def findings_table(findings: Sequence[Mapping[str, Any]], *, include_info: bool, err: bool = False) -> None:
    """The gate's findings (``Finding`` as JSON) as a table on stdout (or stderr); rich loads only to draw one."""
    shown = [f for f in findings if include_info or f["severity"] != "info"]
    if not shown:
        return
    from rich.table import Table
    from rich.text import Text

    from harness.cli.console import err_console, out_console

    table = Table(header_style="bold", expand=False)
    for column in ("code", "severity", "line:col", "message", "hint"):
        table.add_column(column, overflow="fold")
    for f in shown:
        severity = Text(f["severity"], style=_SEVERITY_STYLE[f["severity"]])
        # Messages quote the script (names, strings): control characters are shown, not obeyed.
        message, hint = Text(visible(str(f["message"]))), Text(visible(str(f["hint"])))
        table.add_row(f["code"], severity, f"{f['line']}:{f['col']}", message, hint)
    (err_console if err else out_console).print(table)


# -- harness run ---------------------------------------------------------------------------------
# A request's lines, from its ``RequestEvent``s and report as JSON: the in-process ``run`` and the
# thin client print these same lines.


def attempt_line(number: int) -> Line:
    """The line that starts an LLM call's streamed tokens."""
    return (("generating", "bold"), (f" (LLM call {number})…", ""))


def drafted_lines(decision: Mapping[str, Any], drafted: Mapping[str, Any]) -> list[Line]:
    """What is shown of a prepared request after its analysis (``Drafted`` as JSON): more missing inputs, attempts."""
    lines = [plain(f"  also missing: {visible(missing_text(item))}") for item in decision.get("missing", [])[1:]]
    generation = drafted.get("generation")
    if generation:
        attempts = generation["attempts"]
        lines.append(
            (
                ("generated", "bold"),
                (
                    f" {generation['id']} in {len(attempts)} attempt(s), {generation['tokens']} tokens; "
                    f"kept in {generation['folder']} for review",
                    "",
                ),
            )
        )
        for attempt in attempts:
            if attempt.get("problem") or attempt.get("findings"):
                why = attempt.get("problem") or ", ".join(list(attempt["findings"])[:6])
                lines.append(plain(f"  attempt {attempt['number']} ({attempt['stage']}): {visible(why)}"))
    return lines


def script_listing(script: str) -> None:
    """A dry run's script on stdout: highlighted with line numbers on a terminal, as visible text otherwise."""
    shown = visible(script, lines=True)
    if sys.stdout.isatty():
        from rich.syntax import Syntax

        from harness.cli.console import out_console

        out_console.print(Syntax(shown, "python", line_numbers=True), markup=False, highlight=False)
        return
    sys.stdout.write(shown + "\n")
    sys.stdout.flush()


def dry_run_verdict(passed: bool, policy: str) -> Line:
    """The line that ends a dry run."""
    return plain(f"dry run: the script {'passes' if passed else 'fails'} the {policy} gate; nothing was run")


def gate_refused_line(run_dir: str) -> Line:
    """The line for a script the gate refused (its report was still written)."""
    return (
        ("the static-check gate refused the script", "red"),
        (f"; script, findings and report are in {run_dir}", ""),
    )


def run_summary(report: Mapping[str, Any], run_dir: str | Path) -> list[Line]:
    """A request's run as the summary on stdout (``Report`` as JSON)."""
    result, perf = report["execution_result"], report["performance_metrics"]
    status = str(result["status"])
    lines: list[Line] = [
        (
            (status, f"bold {'green' if status == 'succeeded' else 'red'}"),
            (
                f" · {report['dispatch_decision']['template']} · {result['phases_completed']} phase(s) · "
                f"{perf['total_s']:.2f}s (estimated {perf['estimated_duration_s']:g}s)",
                "",
            ),
        )
    ]
    if status != "succeeded" and result.get("message"):
        lines.append(plain(f"  {visible(str(result['message']))}"))
    if result.get("processed"):
        lines.append(plain(visible(f"  {result['processed']}")))
    quality = report.get("quality_metrics")
    checked = quality["assertions"] if quality else ()
    if checked:
        lines.append(plain(f"  assertions: {sum(bool(a['passed']) for a in checked)}/{len(checked)} passed"))
        lines += [plain(visible(f"  ✗ {a['description']}: {a['detail']}")) for a in checked if not a["passed"]]
    lines += [plain(line) for line in egress_lines(report.get("egress") or ())]
    for item in result["deliverables"]:
        note = f" - {item['description']}" if item.get("description") else ""
        lines.append(plain(visible(f"  {item['path']} ({item['size']} bytes){note}")))
    if result.get("outputs_partial"):
        conflicts = result.get("output_conflicts") or ()
        skipped = f", {len(conflicts)} already there" if conflicts else ""
        lines.append((("  ", ""), ("outputs partial", "yellow"), (f": not everything was collected{skipped}", "")))
    if result.get("output_dir"):
        lines.append(plain(visible(f"  outputs: {result['output_dir']}")))
    lines.append(plain(f"  report: {_join(str(run_dir), 'report.json')}"))
    return lines


def plan_lines(phases: Sequence[Mapping[str, Any]]) -> list[Line]:
    """A plan's decision and stages, before it runs (``describe(plan)`` rows)."""
    lines: list[Line] = [(("decision", "bold"), (f" hybrid: a plan of {len(phases)} phases", ""))]
    for row in phases:
        after = f" after {', '.join(row['depends_on'])}" if row["depends_on"] else ""
        how = f", {row['strategy']}" if row.get("strategy") else ""
        shown = visible(f"stage {row['stage']}: {row['phase']} ({row['template']}{how}){after}")
        lines.append((("plan", "bold"), (f" {shown}", "")))
    return lines


_PHASE_MARK = {"waiting": "·", "running": "▶", "succeeded": "✓", "skipped": "-"}


def plan_phase_line(name: str, state: str) -> str:
    """The line a plan's phase is worth when it changes state, off a terminal."""
    return visible(f"{_PHASE_MARK.get(state, '✗')} {name}: {state}")


def plan_summary(report: Mapping[str, Any], output_dir: str) -> list[Line]:
    """A finished plan as the summary on stdout (``PlanReport`` as JSON)."""
    status = str(report["status"])
    estimate = report.get("estimate")
    lines: list[Line] = [
        (
            (status, f"bold {'green' if status == 'succeeded' else 'red'}"),
            (
                f" · {report['phases_completed']}/{len(report['phases'])} phases · {report['wall_s']:.2f}s wall, "
                f"{report['parallel_execution_percentage']:g}% saved by running in parallel"
                + (f" (estimated {estimate['duration_s']:g}s)" if estimate else ""),
                "",
            ),
        )
    ]
    lines += [plain(visible(f"  {item}")) for item in report["deliverables"]]
    lines += [
        plain(visible(f"  {phase['name']}: outputs partial, not everything was collected"))
        for phase in report["phases"]
        if phase.get("outputs_partial")
    ]
    lines.append(plain(f"  outputs: {output_dir}"))
    lines.append(plain(f"  report: {_join(output_dir, str(report['report_file']))}"))
    return lines


def _join(folder: str, name: str) -> str:
    # As pathlib joins (the in-process CLI prints Path objects): no doubled separator.
    return f"{folder.rstrip('/') or '/'}/{name}".replace("//", "/")


def refusal(problem: Mapping[str, Any]) -> dict[str, object]:
    """A refusal (problem JSON of a usage error) as the one JSON object ``--json`` prints: what is missing, and how."""
    raw = problem.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    missing = list(data.get("missing") or ()) if problem.get("type") == "MissingInputs" else []
    wanted = [m for m in missing if m.get("kind") != "unsupported"]
    return {
        "status": "refused",
        "reason": problem_line(problem),
        "missing": [
            {
                "name": m.get("name"),
                "kind": m.get("kind"),
                "type": m.get("type"),
                "description": m.get("description"),
                "suggestions": list(m.get("suggestions") or ())
                or ([str(m["example"])] if m.get("example") is not None else []),
                **({"reason": m["reason"]} if m.get("reason") else {}),
            }
            for m in wanted
        ],
        "unexplained": [m.get("description") for m in missing if m.get("kind") == "unsupported"],
        "how": missing_text(missing[0]) if missing else str(problem.get("hint") or ""),
    }
