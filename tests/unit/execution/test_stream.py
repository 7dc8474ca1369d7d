"""The host's stream reader: demuxing, the end marker, caps, tails, and the output archive."""

from __future__ import annotations

import io
import json
import struct
import tarfile

from harness.execution.stream import Demuxer, RunReader


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def reader(**kw: object) -> RunReader:
    return RunReader(nonce="n0nce", stdout_cap=kw.pop("stdout_cap", 1 << 20), archive_cap=1 << 20, **kw)  # type: ignore[arg-type]


def marker(code: int = 0) -> bytes:
    return b"\n" + json.dumps({"v": 1, "kind": "_harness_end", "nonce": "n0nce", "exit_code": code}).encode() + b"\n"


def test_demuxer_handles_frames_split_anywhere() -> None:
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"")
    demux = Demuxer()
    frames = [f for i in range(len(data)) for f in demux.feed(data[i : i + 1])]
    assert frames == [(1, b"out\n"), (2, b"err\n"), (1, b"")]


def test_marker_splits_script_output_from_the_archive_in_any_chunking() -> None:
    archive = tar_bytes({"a.txt": b"A\n" * 100, "b.bin": bytes(range(256))})
    stream = b'{"v": 1, "kind": "log", "message": "hi"}\nplain\n' + marker(3) + archive
    for size in (1, 3, 64, 4096, len(stream)):
        seen = []
        r = reader(on_event=seen.append)
        for start in range(0, len(stream), size):
            r.feed(1, stream[start : start + size])
        r.finish()
        assert [e.kind for e in seen] == ["log", "output"], size
        assert r.reported_exit == 3 and r.archive is not None
        assert r.archive.read() == archive
        r.close()
        assert r.stdout_bytes == len(b'{"v": 1, "kind": "log", "message": "hi"}\nplain\n') + 1


def test_script_blank_lines_are_kept_but_the_markers_newline_is_not() -> None:
    seen = []
    r = reader(on_event=seen.append)
    r.feed(1, b"a\n\n\nb\n" + marker())
    r.finish()
    r.close()
    assert [e.text for e in seen] == ["a", "", "", "b"]  # type: ignore[union-attr]


def test_a_guessed_nonce_is_just_output() -> None:
    r = reader()
    r.feed(1, b'{"v": 1, "kind": "_harness_end", "nonce": "guess", "exit_code": 0}\n')
    r.finish()
    assert not r.ended and r.events[0].kind == "unknown"


def test_output_cap_counts_both_streams_and_unterminated_lines() -> None:
    r = reader(stdout_cap=1000)
    r.feed(2, b"e" * 400)
    assert not r.over_cap
    r.feed(1, b"o" * 700)  # no newline yet: still counted
    assert r.over_cap


def test_tails_and_event_cap_bound_memory() -> None:
    r = reader(max_events=5)
    for i in range(50):
        r.feed(1, f"line {i}\n".encode())
    r.feed(2, b"x" * 100_000)
    # the 100 kB stderr line without a newline is cut at 64 KiB: one more event
    assert len(r.events) == 5 and r.events_dropped == 46 and r.seq == 51
    assert r.stdout_tail.endswith("line 49\n") and len(r.stderr_tail) == 8192


def test_host_events_get_sequence_numbers_in_order() -> None:
    from harness.events import RunStarted

    r = reader()
    started = r.emit(RunStarted(run_id="r", image="i", pooled=False, seq=999))
    r.feed(1, b"x\n")
    assert started.seq == 1 and r.events[1].seq == 2
