"""The worker's tar hand-offs: inputs unpacked without escaping their folder, outputs packed within the cap."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from harness.distributed.worker import _pack_outputs, _unpack_inputs


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def test_inputs_unpack_to_their_top_level_names(tmp_path: Path) -> None:
    blob = _tar((tarfile.TarInfo("sales/a.csv"), b"1,2\n"), (tarfile.TarInfo("notes.txt"), b"hi"))
    got = _unpack_inputs(blob, tmp_path / "in")
    assert [p.name for p in got] == ["notes.txt", "sales"]
    assert (tmp_path / "in" / "sales" / "a.csv").read_text() == "1,2\n"
    assert _unpack_inputs(b"", tmp_path / "none") == ()


def test_inputs_that_leave_their_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(tarfile.TarError):
        _unpack_inputs(_tar((tarfile.TarInfo("../escape.txt"), b"x")), tmp_path / "in")
    assert not (tmp_path / "escape.txt").exists()


def test_an_absolute_input_name_lands_inside_the_folder(tmp_path: Path) -> None:
    got = _unpack_inputs(_tar((tarfile.TarInfo("/abs.txt"), b"x")), tmp_path / "in")
    assert got == (tmp_path / "in" / "abs.txt",)


def test_a_link_out_of_the_inputs_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(tarfile.TarError):
        _unpack_inputs(_tar((link, b"")), tmp_path / "in")


def test_outputs_pack_files_and_folders_but_not_the_marker_or_links(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "r.txt").write_text("r")
    (out / ".harness-output").write_text("{}")
    (out / "link").symlink_to("/etc/passwd")
    with tarfile.open(fileobj=io.BytesIO(_pack_outputs(out, 1024)), mode="r:") as tar:
        assert sorted(tar.getnames()) == ["sub", "sub/r.txt"]


def test_outputs_stop_before_the_cap(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a", "b", "c"):
        (out / name).write_bytes(b"x" * 400)
    with tarfile.open(fileobj=io.BytesIO(_pack_outputs(out, 1000)), mode="r:") as tar:
        assert tar.getnames() == ["a", "b"]
