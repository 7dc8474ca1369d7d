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


def test_a_run_of_blank_lines_is_one_event_and_the_markers_newline_is_none() -> None:
    seen = []
    r = reader(on_event=seen.append)
    r.feed(1, b"a\n\n\nb\n\nc\n" + marker())
    r.finish()
    r.close()
    assert [e.text for e in seen] == ["a", "", "b", "", "c"]  # type: ignore[union-attr]
    assert r.blank_lines == 1


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


def finished(r: RunReader) -> list[object]:
    from harness.events import RunFinished

    r.finish()
    r.emit(RunFinished(run_id="r", status="succeeded", exit_code=0, duration_s=1.0))
    r.close()
    return list(r.events)


def test_a_flood_of_bare_newlines_becomes_one_event_in_any_chunking() -> None:
    # The review's flood: 15 MB of "\n" became 10.5 million events. Here 3 MB, chunked like the engine does.
    flood = b"\n" * 3_000_000
    for size in (1 << 16, 1 << 22, 7_777):  # 4 MiB: the marker and the flood in one chunk
        seen: list[object] = []
        r = reader(on_event=seen.append, stdout_cap=1 << 23)
        stream = b"start\n" + flood + b"end\n" + marker() + tar_bytes({"x": b"\n\n\n\n"})
        for at in range(0, len(stream), size):
            r.feed(1, stream[at : at + size])
        finished(r)
        texts = [getattr(e, "text", e.kind) for e in seen]  # type: ignore[attr-defined]
        assert texts == ["start", "", "end", "events_dropped", "run_finished"], size
        assert seen[-2].blank_lines == 2_999_999  # type: ignore[attr-defined]
        assert r.stdout_bytes == len(b"start\n" + flood + b"end\n") + 1


def test_archive_bytes_after_the_marker_keep_their_newlines() -> None:
    archive = tar_bytes({"blank.txt": b"\n" * 5000})
    stream = b"x\n\n\n\n" + marker() + archive
    for size in (len(stream), 5, 8):  # the marker in one chunk, or straddling two
        seen: list[object] = []
        r = reader(on_event=seen.append)
        for at in range(0, len(stream), size):
            r.feed(1, stream[at : at + size])
        r.finish()
        assert r.archive is not None and r.archive.read() == archive, size
        assert [getattr(e, "text", None) for e in seen] == ["x"], size
        r.close()


def test_past_the_delivery_caps_events_are_counted_and_summed_up_once() -> None:
    seen: list[object] = []
    r = reader(on_event=seen.append, max_delivered=100, max_delivered_bytes=1 << 20)
    for i in range(1000):
        r.feed(1, f"line {i}\n".encode())
    r.feed(2, b"err\n" * 10)
    events = finished(r)
    kinds = [getattr(e, "kind", "") for e in seen]
    assert len(seen) == 102 and kinds[-2:] == ["events_dropped", "run_finished"]
    dropped = seen[-2]
    assert dropped.count == 910 and dropped.bytes > 910 * 100  # type: ignore[attr-defined]
    assert r.seq == 1012  # every line still counts as an event of the run
    assert len(events) == 102


def test_the_byte_cap_holds_for_long_lines() -> None:
    seen: list[object] = []
    r = reader(on_event=seen.append, max_delivered_bytes=1 << 20, stdout_cap=1 << 26)
    line = b"y" * 60_000 + b"\n"
    for _ in range(100):
        r.feed(1, line)
    finished(r)
    assert r.delivered_bytes <= 1 << 20 and r.withheld == 100 - 17
    assert sum(len(getattr(e, "text", "")) for e in seen) <= 1 << 20


def test_requests_to_the_host_are_still_read_past_the_caps() -> None:
    r = reader(max_delivered=1)
    r.feed(1, b"a\nb\n")
    r.feed(1, b'{"v": 1, "kind": "agent_request", "id": "q", "role": "r", "prompt": "p"}\n')
    r.feed(1, b'{"v": 1, "kind": "result", "data": [1, 2, 3]}\n')
    assert [q.id for q in r.host_requests] == ["q"] and r.withheld == 3


def test_kept_events_are_capped_by_an_estimate_of_their_memory() -> None:
    # The review's second flood: result lines of [{},{},...] took the host to 424 MB.
    element_list = ",".join(["{}"] * 21_000)
    line = ('{"v":1,"kind":"result","data":[' + element_list + "]}\n").encode()
    r = reader(stdout_cap=1 << 26)
    for _ in range(12):
        r.feed(1, line)
    finished(r)
    kept = [e for e in r.events if e.kind == "result"]
    assert 0 < len(kept) <= 4 and r.kept_bytes <= 4 * 1024 * 1024
    assert r.events_dropped >= 8  # handed on (and written, up to the log's caps), not kept


def test_memory_cost_counts_json_containers() -> None:
    from harness.execution.stream import memory_cost

    flat = memory_cost(b"x" * 3000)
    nested = memory_cost(b"[" + b",".join([b"{}"] * 1000) + b"]")
    assert nested > 20 * (3000 - 1000) and flat < 4000


def test_a_flood_of_newlines_on_stderr_is_folded_too() -> None:
    seen: list[object] = []
    r = reader(on_event=seen.append, stdout_cap=1 << 23)
    for _ in range(30):
        r.feed(2, b"\n" * 100_000)
    finished(r)
    assert len(seen) <= 32 and r.blank_lines > 2_999_000


# -- the supervisor's end report: stderr marker, report fields, outputs trailer ---------------------
def report(code: int = 0, *, settled: bool = True, oom_kills: object = 0) -> bytes:
    fields = {"v": 1, "kind": "_harness_end", "nonce": "n0nce", "exit_code": code, "settled": settled}
    return b"\n" + json.dumps({**fields, "oom_kills": oom_kills}).encode() + b"\n"


def err_marker(nonce: str = "n0nce") -> bytes:
    return b"\n" + json.dumps({"v": 1, "kind": "_harness_end", "nonce": nonce, "stream": "stderr"}).encode() + b"\n"


def trailer(nonce: str = "n0nce") -> bytes:
    return json.dumps({"v": 1, "kind": "_harness_sent", "nonce": nonce}).encode() + b"\n"


def test_the_stderr_marker_ends_stderr_in_any_chunking_and_is_not_output() -> None:
    script_err = b"warning one\nTraceback\n\nValueError: boom\npartial"
    stream = script_err + err_marker() + b"harness entrypoint: a later diagnostic\n"
    for size in (1, 2, 7, 64, len(stream)):
        seen: list[object] = []
        r = reader(on_event=seen.append)
        for at in range(0, len(stream), size):
            r.feed(2, stream[at : at + size])
        assert r.stderr_ended, size
        finished(r)
        texts = [getattr(e, "text", None) for e in seen if getattr(e, "kind", "") == "output"]
        assert texts == [
            "warning one",
            "Traceback",
            "",
            "ValueError: boom",
            "partial",
            "harness entrypoint: a later diagnostic",
        ], size
        assert (
            r.stderr_tail
            == "warning one\nTraceback\n\nValueError: boom\npartial\nharness entrypoint: a later diagnostic\n"
        )
        assert r.stderr_bytes == len(script_err) + 1 + len(b"harness entrypoint: a later diagnostic\n"), size


def test_the_newline_before_the_stderr_marker_is_not_a_blank_line_of_the_script() -> None:
    seen: list[object] = []
    r = reader(on_event=seen.append)
    r.feed(2, b"last line\n" + err_marker())
    finished(r)
    assert [getattr(e, "text", None) for e in seen if getattr(e, "kind", "") == "output"] == ["last line"]
    # Without a marker (an old supervisor, or one that died), a trailing blank line is the script's.
    seen.clear()
    r = reader(on_event=seen.append)
    r.feed(2, b"last line\n\n")
    finished(r)
    assert [getattr(e, "text", None) for e in seen if getattr(e, "kind", "") == "output"] == ["last line", ""]


def test_forged_markers_and_trailers_are_plain_output() -> None:
    r = reader()
    r.feed(2, err_marker("guess"))
    r.feed(1, b'{"v": 1, "kind": "_harness_end", "nonce": "guess", "exit_code": 0, "settled": true}\n')
    r.feed(1, trailer("guess"))
    r.finish()
    assert not r.stderr_ended and not r.ended and not r.sent
    assert r.reported_exit is None and not r.settled


def test_the_report_fields_are_read_strictly() -> None:
    for line, code, settled, kills in (
        (report(3, oom_kills=2), 3, True, 2),
        (report(0, settled=False, oom_kills=None), 0, False, None),
        (report(1, oom_kills=True), 1, True, None),  # a bool is not a count
        (report(1, oom_kills=-1), 1, True, None),
        (
            b"\n" + json.dumps({"v": 1, "kind": "_harness_end", "nonce": "n0nce", "exit_code": True}).encode() + b"\n",
            None,
            False,
            None,
        ),
    ):
        r = reader()
        r.feed(1, line)
        r.close()
        assert (r.ended, r.reported_exit, r.settled, r.oom_kills) == (True, code, settled, kills), line


def test_the_trailer_completes_the_archive_in_any_chunking_and_is_cut_off() -> None:
    archive = tar_bytes({"a.txt": b"A\n" * 100, "b.bin": bytes(range(256))})
    stream = b"out\n" + report(0) + archive + trailer()
    for size in (1, 5, 64, 4096, len(stream)):
        r = reader()
        sent_at = None
        for at in range(0, len(stream), size):
            assert not r.sent, size
            r.feed(1, stream[at : at + size])
            if r.sent and sent_at is None:
                sent_at = at + size
        assert r.sent and sent_at is not None and sent_at >= len(stream), size
        r.finish()
        assert r.archive is not None and r.archive.read() == archive, size
        assert r.archive_bytes == len(archive)
        r.close()


def test_bytes_after_the_trailer_mean_the_archive_is_not_known_complete() -> None:
    archive = tar_bytes({"a.txt": b"A"})
    r = reader()
    r.feed(1, report(0) + archive + trailer())
    assert r.sent
    r.feed(1, b"more")
    assert not r.sent and r.sent_s is None
    r.finish()
    assert r.archive is not None and r.archive.read() == archive + b"more"
    r.close()


def test_a_file_that_holds_a_guessed_trailer_does_not_complete_the_archive() -> None:
    archive = tar_bytes({"forged.txt": trailer("guess") + trailer("n0nc")})
    r = reader()
    r.feed(1, report(0) + archive[:-1024] + trailer("guess"))
    assert not r.sent
    r.close()


def test_the_stdout_tail_holds_the_scripts_lines_and_not_the_markers_newline() -> None:
    for stream, tail in ((b"0\n", "0\n"), (b"a\n\nb\n", "a\n\nb\n"), (b"partial", "partial\n")):
        r = reader()
        r.feed(1, stream + report(0) + tar_bytes({}) + trailer())
        r.finish()
        r.close()
        assert r.stdout_tail == tail, stream


def test_past_the_cap_output_is_skipped_to_the_marker_and_the_outputs_still_arrive() -> None:
    # The host asks the supervisor to stop the script at the cap; until its report arrives the
    # flood is only searched for the marker, in any chunking, and the archive after it is kept.
    archive = tar_bytes({"part.txt": b"half done\n"})
    head = b"line\n" * 300
    flood = b"x" * 5000 + b"\nunfinished"
    stopped = {"v": 1, "kind": "_harness_end", "nonce": "n0nce", "exit_code": 137, "settled": True, "interrupted": True}
    stream = head + flood + b"\n" + json.dumps(stopped).encode() + b"\n" + archive + trailer()
    for size in (1, 7, 64, 4096):  # in one payload there is no "meanwhile": nothing to skip
        seen = []
        r = reader(stdout_cap=1000, on_event=seen.append)
        for at in range(0, len(stream), size):
            r.feed(1, stream[at : at + size])
        r.finish()
        assert r.over_cap and r.ended and r.sent, size
        assert r.reported_exit == 137 and r.reported_interrupt, size
        assert r.stdout_bytes <= 1000 + size, size
        assert r.stdout_bytes + r.skipped_bytes == len(head + flood) + 1, size  # +1: the marker's own newline
        assert not any("unfinished" in e.model_dump_json() for e in seen), size
        assert r.archive is not None and r.archive.read() == archive, size
        r.close()
