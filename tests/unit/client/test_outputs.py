"""``--output`` through a server: the downloaded outputs tar is hostile input, collected under the local rules."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.client.endpoint import Endpoint
from harness.client.outputs import fetch_outputs, merged_report, merged_result
from harness.client.transport import Client
from harness.execution.outputs import MARKER, OUTPUT_MODES
from harness.records import OutputMode


class _Response:
    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._body.read(size)
        self.read_bytes += len(chunk)
        return chunk


class _Conn:
    closed = False

    def close(self) -> None:
        self.closed = True


class _Server(Client):
    """A client whose server answers the outputs download with ``body``."""

    def __init__(self, body: bytes) -> None:
        super().__init__(Endpoint(path="/nonexistent"))
        self.response = _Response(body)
        self.conn = _Conn()
        self.asked: list[str] = []

    def open(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        self.asked.append(f"{method} {path}")
        return self.conn, self.response


def _tar(build: Callable[[tarfile.TarFile], None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        build(tar)
    return buffer.getvalue()


def _file(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


def _listed(*names: str, size: int = 1) -> list[dict[str, Any]]:
    return [{"path": n, "size": size, "declared": False, "description": ""} for n in names]


def _everything_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_output_modes_are_the_records_modes() -> None:
    from typing import get_args

    assert OUTPUT_MODES == get_args(OutputMode)


def test_a_plain_tar_is_collected_with_the_marker(tmp_path: Path) -> None:
    body = _tar(lambda t: (_file(t, "a.txt", b"hi"), _file(t, "sub/b.txt", b"yo")))
    server = _Server(body)
    folder, got = fetch_outputs(server, "abc123", str(tmp_path / "out"), "new", _listed("a.txt", "sub/b.txt", size=2))
    assert server.asked == ["GET /v1/runs/abc123/outputs"] and server.conn.closed
    assert _everything_under(folder) == {MARKER, "a.txt", "sub", "sub/b.txt"} and not got.partial
    assert (folder / "sub/b.txt").read_bytes() == b"yo" and (folder / "a.txt").stat().st_mode & 0o111 == 0


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda t: _file(t, "../escape.txt"), "outside /output"),
        (lambda t: _file(t, "/etc/escape.txt"), "outside /output"),
        (lambda t: _file(t, "/output/../escape.txt"), "outside /output"),
        (lambda t: _link(t, "passwd", "/etc/passwd"), "symlink"),
        (lambda t: _link(t, "hard", "/etc/passwd", tarfile.LNKTYPE), "hard link"),
        (lambda t: _link(t, "fifo", "", tarfile.FIFOTYPE), "special file"),
        (lambda t: _file(t, ".bashrc"), "names starting with a dot"),
        (lambda t: _file(t, "sub/.git/config"), "names starting with a dot"),
        (lambda t: _file(t, "conftest.py"), "Python runs this file"),
        (lambda t: _file(t, "evil.pth"), "Python runs this file"),
        (lambda t: _file(t, "bell\x07.txt"), "control character"),
    ],
)
def test_hostile_members_are_refused_and_nothing_leaves_the_folder(
    tmp_path: Path, build: Callable[[tarfile.TarFile], None], why: str
) -> None:
    body = _tar(lambda t: (_file(t, "ok.txt"), build(t)))
    folder, got = fetch_outputs(_Server(body), "r1", str(tmp_path / "out"), "new", _listed("ok.txt", "x"))
    assert got.partial and any(why in w for w in got.warnings), got.warnings
    assert _everything_under(folder) == {MARKER, "ok.txt"}
    assert _everything_under(tmp_path) == {"out", f"out/{MARKER}", "out/ok.txt"}


def test_bytes_past_what_the_server_listed_are_not_written(tmp_path: Path) -> None:
    # The server said one 4-byte file; the tar carries a megabyte, then another file.
    big = b"A" * (1 << 20)
    server = _Server(_tar(lambda t: (_file(t, "big.bin", big), _file(t, "more.txt"))))
    folder, got = fetch_outputs(server, "r2", str(tmp_path / "out"), "new", _listed("big.bin", size=4))
    assert got.partial and not (folder / "big.bin").exists() and not (folder / "more.txt").exists()
    assert server.response.read_bytes < 64 * 1024  # the download stopped near the listed size, not at its end


def test_more_entries_than_listed_are_not_written(tmp_path: Path) -> None:
    server = _Server(_tar(lambda t: [_file(t, f"f{i}.txt") for i in range(5)]))
    folder, got = fetch_outputs(server, "r3", str(tmp_path / "out"), "new", _listed("f0.txt", "f1.txt"))
    assert got.partial and _everything_under(folder) == {MARKER, "f0.txt", "f1.txt"}


def test_listed_outputs_that_do_not_arrive_make_it_partial(tmp_path: Path) -> None:
    server = _Server(_tar(lambda t: _file(t, "a.txt")))
    _, got = fetch_outputs(server, "r8", str(tmp_path / "out"), "new", _listed("a.txt", "b.txt"))
    assert got.partial and got.warnings == ["1 of the 2 outputs the server listed did not arrive"]


def test_a_truncated_tar_keeps_what_came_whole(tmp_path: Path) -> None:
    body = _tar(lambda t: (_file(t, "a.txt", b"a" * 700), _file(t, "b.txt", b"b" * 700)))
    server = _Server(body[: 1536 + 512 + 100])  # the second member's data is cut
    folder, got = fetch_outputs(server, "r4", str(tmp_path / "out"), "new", _listed("a.txt", "b.txt", size=700))
    assert got.partial and (folder / "a.txt").read_bytes() == b"a" * 700
    assert any("ended early or is malformed" in w for w in got.warnings)


def test_merge_skips_existing_files_and_a_planted_link_redirects_nothing(tmp_path: Path) -> None:
    dest, outside = tmp_path / "mine", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "a.txt").write_text("mine")
    os.symlink(outside, dest / "sub")  # planted: a write through it would land outside
    body = _tar(lambda t: (_file(t, "a.txt", b"theirs"), _file(t, "sub/b.txt"), _file(t, "c.txt")))
    listed = _listed("a.txt", "sub/b.txt", "c.txt", size=10)
    folder, got = fetch_outputs(_Server(body), "r5", str(dest), "merge", listed)
    assert (dest / "a.txt").read_text() == "mine" and got.conflicts == ["a.txt"]
    assert list(outside.iterdir()) == [] and (folder / "c.txt").is_file() and not (dest / MARKER).exists()
    assert got.partial and any("sub/b.txt" in w for w in got.warnings)


def test_merged_result_and_report_describe_what_was_collected_here(tmp_path: Path) -> None:
    body = _tar(lambda t: (_file(t, "a.txt", b"hi"), _file(t, "b.txt", b"yo")))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "b.txt").write_text("mine")
    rows = [
        {"path": "a.txt", "size": 2, "declared": True, "description": "the greeting"},
        {"path": "b.txt", "size": 2, "declared": False, "description": ""},
    ]
    folder, got = fetch_outputs(_Server(body), "r6", str(dest), "merge", rows)
    result = merged_result({"status": "succeeded", "artifacts": rows, "output_warnings": ["w"]}, folder, got)
    assert result["artifacts"] == rows[:1] and result["output_dir"] == str(folder)
    assert result["outputs_partial"] and result["output_conflicts"] == ["b.txt"] and result["output_warnings"][0] == "w"
    deliverables = [{"path": "a.txt", "size": 2, "description": "the greeting"}, {"path": "b.txt", "size": 2}]
    report = merged_report({"run_id": "r6", "execution_result": {"deliverables": deliverables}}, folder, got)
    assert report["execution_result"]["deliverables"] == deliverables[:1] and report["run_id"] == "r6"


def test_a_refused_destination_raises_before_any_download(tmp_path: Path) -> None:
    from harness.errors import OutputExists

    dest = tmp_path / "used"
    dest.mkdir()
    (dest / "x").write_text("x")
    server = _Server(b"")
    mode: OutputMode = "new"
    with pytest.raises(OutputExists):
        fetch_outputs(server, "r7", str(dest), mode, [])
    assert server.asked == []
