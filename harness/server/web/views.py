"""What the review page shows, gathered from the stores into plain view models.

Every string in these models that a script, an LLM or a container could have written has been
through ``visible`` (control and invisible characters shown as escapes); the templates then
HTML-escape it (autoescape). The findings shown are computed here, on the very bytes shown,
rather than read from ``checks.json``: a script edited on disk after generation is shown with
its own findings, never with the stale ones of the bytes it replaced.
"""

from __future__ import annotations

import difflib
import json
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict

from harness.app import review
from harness.errors import HarnessError
from harness.safe_text import visible, visible_lines

if TYPE_CHECKING:
    from harness.checks.models import CheckReport
    from harness.review.store import GeneratedRecord
    from harness.services import Services

__all__ = [
    "CodeLine",
    "DiffLine",
    "FindingView",
    "QueueItem",
    "RunView",
    "ScriptPage",
    "queue",
    "script_page",
]

_MAX_EVENTS = 200  # per run, on the page; the whole log stays in the run folder
_MAX_OUTPUTS = 200
_MAX_RUN_FILE = 4 * 1024 * 1024
_MAX_EVENT_LINE = 70_000  # the host cuts event lines at 64 KiB; past this a line is not one it wrote
_MAX_ATTEMPT = 4 * 1024 * 1024


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueItem(_View):
    """One generated script in the queue."""

    id: str
    status: str
    strategy: str
    created_at: str
    request: str
    gate_passed: bool
    runs: int


class FindingView(_View):
    """A gate finding, shown at its line."""

    code: str
    severity: str
    line: int
    col: int
    message: str
    hint: str
    blocking: bool


class CodeLine(_View):
    """One numbered line of the script with the findings that point at it."""

    number: int
    text: str
    findings: tuple[FindingView, ...] = ()


class DiffLine(_View):
    """One line of a unified diff and how to colour it."""

    kind: Literal["add", "del", "hunk", "head", "same"]
    text: str


class AttemptView(_View):
    """One try at the script, as the record keeps it."""

    number: int
    stage: str
    gate_passed: bool
    findings: str
    problem: str
    run_status: str
    tokens: int


class EventView(_View):
    """One line of a run's events log."""

    seq: str
    kind: str
    text: str


class OutputView(_View):
    """One entry of a run's output folder."""

    path: str
    size: int
    kind: str


class EgressView(_View):
    """What a run fetched from one host through the host's broker."""

    host: str
    requests: int
    bytes_in: int
    bytes_out: int
    refused: int


class RunView(_View):
    """One sandbox run of the script: how it ended, its events, outputs and egress."""

    run_id: str
    status: str
    exit_code: str = ""
    message: str = ""
    duration_s: str = ""
    events: tuple[EventView, ...] = ()
    events_total: int = 0
    outputs: tuple[OutputView, ...] = ()
    outputs_more: bool = False
    egress: tuple[EgressView, ...] = ()
    missing: str = ""


class ParameterView(_View):
    """A constant the promotion form offers as a scaffold parameter."""

    constant: str
    name: str
    type: str
    default: str
    description: str


class ScriptPage(_View):
    """Everything the script page shows."""

    id: str
    status: str
    request: str
    strategy: str
    model: str
    created_at: str
    base_scaffold: str
    explanation: str
    tokens: tuple[tuple[str, int], ...]
    cost_usd: float
    sha256: str
    reviewed_sha256: str
    changed_after_review: bool
    reviewer: str
    review_note: str
    granted_hosts: tuple[str, ...]
    promoted_as: str
    parameters: str
    gate_policy: str
    gate_passed: bool
    code: tuple[CodeLine, ...]
    whole_script_findings: tuple[FindingView, ...]
    finding_count: int
    attempts: tuple[AttemptView, ...]
    diff_scaffold: tuple[DiffLine, ...]
    diff_scaffold_note: str
    diff_previous: tuple[DiffLine, ...]
    diff_previous_note: str
    runs: tuple[RunView, ...]
    proposals: tuple[ParameterView, ...]


# -- the queue ----------------------------------------------------------------------------------------
def queue(services: Services, status: str | None = "pending_review") -> list[QueueItem]:
    """The generated scripts with this status (all when None), newest first."""
    records = review.list_records(services, status)  # newest first
    return [
        QueueItem(
            id=r.id,
            status=r.status,
            strategy=visible(r.strategy),
            created_at=visible(r.created_at),
            request=visible(r.request),
            gate_passed=r.gate_passed,
            runs=len(dict.fromkeys(r.runs)),
        )
        for r in records
    ]


# -- the script page ----------------------------------------------------------------------------------
def script_page(services: Services, record_id: str) -> ScriptPage:
    """The script page of one generated script (NotFound/InvalidInput for a bad id)."""
    detail = review.show(services, record_id)  # shown, checked and hashed from one read
    record, script, digest = detail.record, detail.script, detail.sha256
    policy = "standard" if record.strategy == "customise_template" else "strict"
    report = _checks(script, policy, digest)
    from harness.checks.gate import get_policy

    blocks = get_policy(policy).blocks
    lines = visible_lines(script)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the break that ends the last line does not start another
    at_line: dict[int, list[FindingView]] = {}
    whole: list[FindingView] = []
    for finding in report.findings:
        view = FindingView(
            code=visible(finding.code),
            severity=finding.severity,
            line=finding.line,
            col=finding.col,
            message=visible(finding.message),
            hint=visible(finding.hint),
            blocking=blocks(finding),
        )
        if 1 <= finding.line <= len(lines):
            at_line.setdefault(finding.line, []).append(view)
        else:
            whole.append(view)
    code = tuple(
        CodeLine(number=n, text=text, findings=tuple(at_line.get(n, ()))) for n, text in enumerate(lines, start=1)
    )
    diff_scaffold, scaffold_note = _diff_scaffold(services, record, script)
    diff_previous, previous_note = _diff_previous(services, record, script)
    return ScriptPage(
        id=record.id,
        status=record.status,
        request=visible(record.request),
        strategy=visible(record.strategy),
        model=visible(record.model),
        created_at=visible(record.created_at),
        base_scaffold=visible(record.base_scaffold or ""),
        explanation=visible(record.explanation),
        tokens=tuple((visible(k), v) for k, v in record.tokens.items()),
        cost_usd=record.cost_usd,
        sha256=digest,
        reviewed_sha256=record.reviewed_sha256 or "",
        changed_after_review=detail.changed_after_review,
        reviewer=visible(record.reviewer or ""),
        review_note=visible(record.review_note),
        granted_hosts=tuple(visible(h) for h in record.granted_hosts),
        promoted_as=visible(record.promoted_as or ""),
        parameters=visible(json.dumps(record.parameters, ensure_ascii=False)) if record.parameters else "",
        gate_policy=policy,
        gate_passed=report.passed,
        code=code,
        whole_script_findings=tuple(whole),
        finding_count=len(report.findings),
        attempts=tuple(
            AttemptView(
                number=a.number,
                stage=a.stage,
                gate_passed=a.gate_passed,
                findings=visible(", ".join(a.findings)),
                problem=visible(a.problem),
                run_status=visible(a.run_status or ""),
                tokens=a.tokens,
            )
            for a in record.attempts
        ),
        diff_scaffold=diff_scaffold,
        diff_scaffold_note=scaffold_note,
        diff_previous=diff_previous,
        diff_previous_note=previous_note,
        runs=tuple(_run(services, run_id) for run_id in dict.fromkeys(record.runs)),
        proposals=tuple(_proposals(script)) if record.status == "approved" else (),
    )


# Checking a script runs every checker (bandit included); a page is reloaded often, the bytes rarely change.
_CHECKS: OrderedDict[tuple[str, str], CheckReport] = OrderedDict()
_CHECKS_LOCK = threading.Lock()


def _checks(script: str, policy: str, digest: str) -> CheckReport:
    from harness.checks import run_checks

    key = (digest, policy)
    with _CHECKS_LOCK:
        if key in _CHECKS:
            _CHECKS.move_to_end(key)
            return _CHECKS[key]
    report = run_checks(script, policy)
    with _CHECKS_LOCK:
        _CHECKS[key] = report
        while len(_CHECKS) > 64:
            _CHECKS.popitem(last=False)
    return report


def _diff(before: str, after: str, before_name: str, after_name: str) -> tuple[DiffLine, ...]:
    # Compared line by line as Python splits lines, each shown with its controls escaped (as the CLI does).
    lines = difflib.unified_diff(
        visible_lines(before), visible_lines(after), visible(before_name), visible(after_name), lineterm=""
    )
    return tuple(DiffLine(kind=_kind(line), text=line) for line in lines)


def _kind(line: str) -> Literal["add", "del", "hunk", "head", "same"]:
    if line.startswith(("---", "+++")):
        return "head"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    return "del" if line.startswith("-") else "same"


def _diff_scaffold(services: Services, record: GeneratedRecord, script: str) -> tuple[tuple[DiffLine, ...], str]:
    if not record.base_scaffold:
        return (), "written from scratch: no scaffold to compare with"
    try:
        found = review.diff(services, record.id)
    except HarnessError as exc:
        return (), visible(f"the scaffold {record.base_scaffold} cannot be shown: {exc.one_line()}")
    rows = tuple(DiffLine(kind=_kind(line), text=line) for line in found.lines)
    return rows, "" if rows else "no difference"


def _diff_previous(services: Services, record: GeneratedRecord, script: str) -> tuple[tuple[DiffLine, ...], str]:
    folder = services.generated.folder(record.id) / "attempts"
    codes: list[tuple[int, str]] = []
    for attempt in record.attempts:
        data = _read_regular(folder / f"{attempt.number:02d}.py", _MAX_ATTEMPT)
        if data is not None:
            codes.append((attempt.number, data.decode("utf-8", errors="replace")))
    # The script is the last attempt's code; the previous attempt is the one before it that differs.
    earlier = [(n, c) for n, c in codes if c != script]
    if codes and codes[-1][1] == script:
        earlier = [(n, c) for n, c in codes[:-1] if c != script]
    if not earlier:
        return (), "the first attempt: nothing earlier to compare with"
    number, previous = earlier[-1]
    diff = _diff(previous, script, f"attempt {number}", record.id)
    return diff, "" if diff else "no difference"


def _proposals(script: str) -> list[ParameterView]:
    from harness.server.web.actions import proposals

    return [
        ParameterView(
            constant=visible(p.constant),
            name=visible(p.name),
            type=p.type,
            default=visible(json.dumps(p.default, ensure_ascii=False)),
            description=visible(p.description),
        )
        for p in proposals(script)
    ]


# -- runs ---------------------------------------------------------------------------------------------
def _run(services: Services, run_id: str) -> RunView:
    try:
        path = services.runs.load(run_id).path
    except HarnessError as exc:
        return RunView(run_id=visible(run_id), status="gone", missing=visible(exc.one_line()))
    result = _json(path / "result.json")
    report = _json(path / "report.json")
    execution = report.get("execution_result")
    source = result or (execution if isinstance(execution, dict) else {})
    status = str(source.get("status", "unfinished"))
    exit_code = source.get("exit_code")
    events, total = _events(path / "events.jsonl")
    outputs, more = _outputs(path / "output")
    egress_rows = report.get("egress") or result.get("egress") or []
    return RunView(
        run_id=run_id,
        status=visible(status),
        exit_code="" if exit_code is None else visible(str(exit_code)),
        message=visible(str(source.get("message", ""))),
        duration_s=_seconds(result.get("duration_s")),
        events=events,
        events_total=total,
        outputs=outputs,
        outputs_more=more,
        egress=tuple(_egress(egress_rows)),
    )


def _seconds(value: object) -> str:
    return f"{value:.2f} s" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _egress(rows: object) -> list[EgressView]:
    views = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue

        def count(key: str, row: dict[str, object] = row) -> int:
            value = row.get(key, 0)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        views.append(
            EgressView(
                host=visible(str(row.get("host", "?"))),
                requests=count("requests"),
                bytes_in=count("bytes_in"),
                bytes_out=count("bytes_out"),
                refused=count("refused"),
            )
        )
    return views


def _events(path: Path) -> tuple[tuple[EventView, ...], int]:
    # Streamed: the log may hold up to its cap (8 MiB); the first lines are shown and the rest counted.
    views: list[EventView] = []
    total = 0
    with _open_regular(path) as fh:
        for raw in fh if fh is not None else ():
            total += 1
            if len(views) < _MAX_EVENTS:
                views.append(_event(raw[:_MAX_EVENT_LINE].decode("utf-8", errors="replace")))
    return tuple(views), total


def _event(text: str) -> EventView:
    try:
        event = json.loads(text)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return EventView(seq="", kind="unreadable", text=visible(text[:2000]))
    seq, kind = event.pop("seq", ""), event.pop("kind", "?")
    for noise in ("v", "t"):
        event.pop(noise, None)
    body = json.dumps(event, ensure_ascii=False, sort_keys=True)
    return EventView(seq=visible(str(seq)), kind=visible(str(kind)), text=visible(body[:2000]))


def _outputs(root: Path) -> tuple[tuple[OutputView, ...], bool]:
    # Names come from the container: walked without following links, shown with controls escaped.
    views: list[OutputView] = []
    if not root.is_dir() or root.is_symlink():
        return (), False
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            full = os.path.join(folder, name)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            kind = "file" if stat.S_ISREG(info.st_mode) else "link" if stat.S_ISLNK(info.st_mode) else "other"
            rel = os.path.relpath(full, root)
            views.append(OutputView(path=visible(rel), size=info.st_size if kind == "file" else 0, kind=kind))
            if len(views) >= _MAX_OUTPUTS:
                return tuple(views), True
    return tuple(views), False


def _json(path: Path) -> dict[str, object]:
    data = _read_regular(path, _MAX_RUN_FILE)
    if data is None:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO | None]:
    """The file open for reading, or None for anything missing, linked or special (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        yield None
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            yield None
            return
        with os.fdopen(os.dup(fd), "rb") as fh:
            yield fh
    finally:
        os.close(fd)


def _read_regular(path: Path, limit: int) -> bytes | None:
    """A regular file's first ``limit`` bytes, or None for anything missing, linked or special."""
    with _open_regular(path) as fh:
        return None if fh is None else fh.read(limit)
