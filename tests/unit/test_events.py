"""The event parser and line splitter: typed events from untrusted bytes, never a crash."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from harness.cli.display import RunDisplay
from harness.events import (
    EVENT_ADAPTER,
    MAX_DEPTH,
    MAX_LINE,
    Event,
    LineSplitter,
    OutputEvent,
    ProgressEvent,
    ResultEvent,
    UnknownEvent,
    parse_line,
)
from harness.records import PolicyReceipt, RunResult
from harness.report import ExecutionResult


def line(**obj: object) -> bytes:
    return json.dumps({"v": 1, **obj}).encode()


def test_known_kinds_become_models() -> None:
    event = parse_line(line(kind="progress", done=3, total=10, message="x"), seq=4, t=0.5)
    assert isinstance(event, ProgressEvent)
    assert (event.done, event.total, event.message, event.seq, event.t) == (3, 10, "x", 4, 0.5)
    assert parse_line(line(kind="phase", name="a", status="start")).kind == "phase"
    assert parse_line(line(kind="log", level="WARN", message="m")).level == "warning"  # type: ignore[union-attr]
    assert parse_line(line(kind="result", data={"a": [1, None]})).data == {"a": [1, None]}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (line(kind="run_finished", status="succeeded", exit_code=0, run_id="x", duration_s=0), "unknown kind"),
        (line(kind="nope"), "unknown kind"),
        (line(kind="progress", done="many"), "invalid progress"),
        (line(kind="progress", done=1, extra=True), "invalid progress"),
        (b'{"v": 2, "kind": "log", "message": "m"}', "unsupported protocol version"),
        (b'{"v": 1, "kind": "metric", "name": "m", "value": NaN}', "invalid metric"),
        (line(kind="phase", name="a", status="start", seq=99), None),
    ],
)
def test_bad_or_forged_events_are_kept_as_unknown(raw: bytes, reason: str | None) -> None:
    event = parse_line(raw, seq=7)
    if reason is None:
        assert event.kind == "phase" and event.seq == 7  # a script cannot choose its own sequence number
    else:
        assert isinstance(event, UnknownEvent) and reason in event.reason


@pytest.mark.parametrize(
    "raw", [b"hello", b"", b'{"no": "version"}', b"[1, 2]", b"{broken", b"\xff\xfe\x00", b'"just a string"']
)
def test_everything_else_is_plain_output(raw: bytes) -> None:
    event = parse_line(raw)
    assert isinstance(event, OutputEvent) and event.stream == "stdout"


def test_stderr_and_truncated_lines_are_never_parsed() -> None:
    assert parse_line(line(kind="log", message="m"), stream="stderr").kind == "output"
    cut = parse_line(line(kind="log", message="m"), truncated=True)
    assert isinstance(cut, OutputEvent) and cut.truncated


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_parse_line_never_raises_on_bytes(raw: bytes) -> None:
    event = parse_line(raw)
    assert EVENT_ADAPTER.validate_python(event.model_dump()) == event


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["phase", "progress", "log", "metric", "artifact", "result", "agent_request", "x", "output"]),
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "status",
                "done",
                "total",
                "message",
                "level",
                "value",
                "path",
                "data",
                "id",
                "role",
                "prompt",
                "unit",
                "ok",
                "phase",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_parse_line_never_raises_on_event_shaped_json(kind: str, fields: dict) -> None:
    event = parse_line(line(kind=kind, **fields))
    assert event.kind in ("unknown", kind)


def test_splitter_cuts_long_lines_and_drops_their_rest() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"short\n0123456789ABC") == [(b"short", False), (b"0123456789", True)]
    assert splitter.feed(b"DEF\nnext\n") == [(b"next", False)]
    assert splitter.feed(b"tail") == []
    assert splitter.flush() == [(b"tail", False)]


def test_splitter_reassembles_lines_across_chunks() -> None:
    splitter = LineSplitter()
    data = b"".join(f"line {i}\n".encode() for i in range(100))
    out = [piece for start in range(0, len(data), 7) for piece in splitter.feed(data[start : start + 7])]
    assert [text for text, _ in out] == [f"line {i}".encode() for i in range(100)]


def test_splitter_stops_after_the_marker_line() -> None:
    splitter = LineSplitter()
    lines = splitter.feed(b"a\nMARK here\n\x00binary\nrest", stop=b"MARK")
    assert lines == [(b"a", False), (b"MARK here", False)]
    assert splitter.rest == b"\x00binary\nrest"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=30), st.integers(min_value=1, max_value=64))
def test_splitter_memory_is_bounded(chunks: list[bytes], max_line: int) -> None:
    splitter = LineSplitter(max_line=max_line)
    for chunk in chunks:
        for piece, _ in splitter.feed(chunk):
            assert len(piece) <= max_line and b"\n" not in piece
        assert splitter.pending_size() <= max_line


def test_max_line_is_64_kib() -> None:
    assert MAX_LINE == 64 * 1024


# -- hostile strings and numbers: whatever a script sends reaches disk and the screen ---------------
# issue 9 item 7: one event line with a lone surrogate (a JSON escape, valid UTF-8 bytes) crashed the
# host at its first JSON dump, leaving no result.json and an unfinished history row.

ISSUE_LINE = b'{"v":1,"kind":"result","data":{"\\ud800":1}}'


def survives(event: Event) -> str:
    """Dump ``event`` the ways the host does (events.jsonl, result.json, report.json) and show it."""
    line = event.model_dump_json()
    assert EVENT_ADAPTER.validate_json(line) == event  # what events.jsonl holds reads back as written
    run = RunResult(
        run_id="r1", status="succeeded", exit_code=0, image="img", pooled=False, duration_s=0.1,
        events=(event,), policy=PolicyReceipt(),
    )  # fmt: skip
    assert RunResult.model_validate_json(run.model_dump_json(indent=2)) == run
    json.loads(ExecutionResult.of(run).model_dump_json())
    screen = io.StringIO()
    display = RunDisplay(Console(file=screen, width=100, color_system=None), "fuzz")
    display.on_event(event)
    display.console.print(display._render())
    return screen.getvalue()


def test_the_issue_line_keeps_its_data_with_the_surrogate_replaced() -> None:
    event = parse_line(ISSUE_LINE)
    assert isinstance(event, ResultEvent) and event.data == {"\ufffd": 1}
    survives(event)


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        (b'{"v":1,"kind":"log","level":"error","message":"a\\udc00b"}', "message", "a\ufffdb"),
        (b'{"v":1,"kind":"phase","name":"\\ud83d","status":"start"}', "name", "\ufffd"),
        (b'{"v":1,"kind":"result","data":[{"k\\udfff":["\\ud800\\ud800"]}]}', "data", [{"k\ufffd": ["\ufffd\ufffd"]}]),
        (b'{"v":1,"kind":"result","data":"\\ud83d\\ude00 stays"}', "data", "\U0001f600 stays"),  # a real pair
        (b'{"v":1,"kind":"\\ud800"}', "reason", "unknown kind '\ufffd'"),
    ],
)
def test_lone_surrogates_anywhere_become_replacement_characters(raw: bytes, field: str, expected: object) -> None:
    event = parse_line(raw)
    assert getattr(event, field) == expected
    if event.kind == "log":
        assert "error: a\ufffdb" in survives(event)  # shown, not refused
    survives(event)


@pytest.mark.parametrize(
    "value", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"[NaN]", b'{"x": -Infinity}']
)  # fmt: skip
@pytest.mark.parametrize("kind", ["result", "metric", "progress"])
def test_non_finite_numbers_are_unknown_events_not_crashes(kind: str, value: bytes) -> None:
    field = {"result": b"data", "metric": b"value", "progress": b"done"}[kind]
    raw = b'{"v":1,"kind":"' + kind.encode() + b'","name":"n","' + field + b'":' + value + b"}"
    event = parse_line(raw)
    assert isinstance(event, UnknownEvent) and f"invalid {kind} event" in event.reason
    survives(event)


def nested(depth: int) -> bytes:
    return b'{"v":1,"kind":"result","data":' + b"[" * depth + b"1" + b"]" * depth + b"}"


def test_nesting_is_kept_to_max_depth_and_deeper_lines_are_unknown() -> None:
    kept = parse_line(nested(MAX_DEPTH - 1))  # the event object itself is the first level
    assert kept.kind == "result"
    survives(kept)
    for depth in (MAX_DEPTH, 250, 254, 900):  # 254 passed pydantic here, then crashed the report
        event = parse_line(nested(depth))
        assert isinstance(event, UnknownEvent) and f"nested deeper than {MAX_DEPTH} levels" in event.reason
        survives(event)
    assert parse_line(nested(100_000)).kind == "output"  # json itself gives up: plain text, not a crash


@pytest.mark.parametrize("digits", [19, 20, 400, 4300])
def test_huge_integers_survive_every_dump(digits: int) -> None:
    number = "9" * digits
    event = parse_line(b'{"v":1,"kind":"result","data":{"n":' + number.encode() + b"}}")
    assert isinstance(event, ResultEvent) and event.data == {"n": int(number)}
    survives(event)
    metric = parse_line(b'{"v":1,"kind":"metric","name":"m","value":' + number.encode() + b"}")
    survives(metric)  # a float, or an unknown event when it is past a float's range


def test_integers_past_pythons_conversion_limit_are_plain_output() -> None:
    event = parse_line(b'{"v":1,"kind":"result","data":' + b"9" * 5000 + b"}")
    assert event.kind == "output"
    survives(event)


_LONE = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d"])
_hostile_text = st.lists(_LONE | st.text(max_size=6), min_size=1, max_size=4).map("".join)
_hostile_numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**4299), max_value=10**4299)
    | st.sampled_from([10**4299, -(10**4299), 2**63, -(2**63) - 1, 2**64])
)
_hostile_values = st.recursive(
    st.none() | st.booleans() | _hostile_numbers | _hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_hostile_text, inner, max_size=4),
    max_leaves=16,
)
# Each kind with fields it accepts, so that most examples become models rather than unknown events.
_headers = st.dictionaries(_hostile_text, _hostile_text, max_size=3)
_KINDS = {
    "phase": {"name": _hostile_text, "status": st.sampled_from(["start", "end"]), "ok": st.none() | st.booleans()},
    "progress": {"done": _hostile_numbers, "total": _hostile_numbers, "message": _hostile_text, "phase": _hostile_text},
    "log": {"level": st.sampled_from(["info", "warn", "error"]), "message": _hostile_text},
    "metric": {"name": _hostile_text, "value": _hostile_numbers, "unit": _hostile_text},
    "artifact": {"path": _hostile_text, "description": _hostile_text},
    "result": {"data": _hostile_values},
    "agent_request": {"id": _hostile_text, "role": _hostile_text, "prompt": _hostile_text},
    "fetch_request": {
        "id": _hostile_text,
        "url": _hostile_text,
        "headers": st.dictionaries(_hostile_text, _hostile_text),
    },
}


@st.composite
def hostile_events(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    kind = draw(st.sampled_from(sorted(_KINDS)))
    fields = {name: draw(value) for name, value in _KINDS[kind].items() if draw(st.booleans())}
    if draw(st.integers(0, 5)) == 0:  # now and then a field no model has, or any value in a known one
        fields[draw(_hostile_text)] = draw(_hostile_values)
    return kind, fields


@settings(max_examples=400, deadline=None)
@given(hostile_events(), st.integers(min_value=0, max_value=300))
def test_hostile_events_survive_parse_dump_and_display(event: tuple[str, dict[str, object]], depth: int) -> None:
    kind, fields = event
    text = json.dumps({"v": 1, "kind": kind, **fields})  # ensure_ascii: surrogates travel as \\ud800 escapes
    if depth and fields and kind == "result":
        inner = json.dumps(fields.get("data"))
        text = json.dumps({"v": 1, "kind": kind})[:-1] + ', "data": ' + "[" * depth + inner + "]" * depth + "}"
    parsed = parse_line(text.encode())
    survives(parsed)
    for value in parsed.model_dump().values():
        if isinstance(value, str):
            value.encode("utf-8")  # strict: nothing unencodable is left anywhere


def test_a_script_cannot_forge_the_dropped_events_marker() -> None:
    event = parse_line(line(kind="events_dropped", count=0, bytes=0))
    assert isinstance(event, UnknownEvent) and "events_dropped" in event.reason
