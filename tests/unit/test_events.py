"""The event parser and line splitter: typed events from untrusted bytes, never a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.events import (
    EVENT_ADAPTER,
    MAX_LINE,
    LineSplitter,
    OutputEvent,
    ProgressEvent,
    UnknownEvent,
    parse_line,
)


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


def test_a_script_cannot_forge_the_dropped_events_marker() -> None:
    event = parse_line(line(kind="events_dropped", count=0, bytes=0))
    assert isinstance(event, UnknownEvent) and "events_dropped" in event.reason
