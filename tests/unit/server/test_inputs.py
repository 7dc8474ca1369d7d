"""Client input tars: every member is checked before anything is written, and written only under our folder."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from harness.errors import InvalidInput
from harness.server.inputs import extract_inputs, validate_inputs


def _tar(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _file(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _file("/etc/passwd"),
        _file("../up"),
        _file("a/../../up"),
        _file("a//b"),
        _file("."),
        _special("l", tarfile.SYMTYPE, "/etc/passwd"),
        _special("h", tarfile.LNKTYPE, "other"),
        _special("dev", tarfile.CHRTYPE),
        _special("fifo", tarfile.FIFOTYPE),
    ],
    ids=["absolute", "dotdot", "inner-dotdot", "empty-part", "dot", "symlink", "hardlink", "device", "fifo"],
)
def test_hostile_members_are_refused_and_nothing_is_written(tmp_path: Path, member: tarfile.TarInfo) -> None:
    with pytest.raises(InvalidInput):
        extract_inputs(_tar(_file("ok.txt"), member), tmp_path / "in", 1 << 20)
    assert not (tmp_path / "in").exists()


def test_size_count_duplicates_and_file_folder_clashes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="input limit"):
        validate_inputs(_tar(_file("a", 10), data=b"0123456789"), 5)
    with pytest.raises(InvalidInput, match="twice"):
        validate_inputs(_tar(_file("a"), _file("./a")), 100)
    with pytest.raises(InvalidInput, match="both a file and a folder"):
        validate_inputs(_tar(_file("a"), _file("a/b")), 100)
    with pytest.raises(InvalidInput, match="readable"):
        validate_inputs(b"not a tar at all" * 64, 100)


def test_a_plain_tar_is_written_under_the_folder(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("data")
    folder.type = tarfile.DIRTYPE
    blob = _tar(folder, _file("data/deep/x.txt"), _file("top.txt"))
    top = extract_inputs(blob, tmp_path / "in", 1 << 20)
    assert sorted(p.name for p in top) == ["data", "top.txt"]
    assert (tmp_path / "in/data/deep/x.txt").read_bytes() == b"x"
    assert (tmp_path / "in/top.txt").stat().st_mode & 0o777 == 0o644
