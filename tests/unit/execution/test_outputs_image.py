"""Output collection refuses escapes; the image tag and apt mirror are derived, not hard-coded."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from harness.errors import ImageError
from harness.execution.image import apt_mirror, image_tag
from harness.execution.outputs import collect_outputs, normalise_output_path


def archive(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in entries:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    buf.seek(0)
    return buf


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def test_hostile_archive_entries_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    dest = tmp_path / "out"
    dest.mkdir()
    entries = [
        entry("./ok/a.txt"),
        entry("/etc/evil"),
        entry("../outside.txt"),
        entry("ok/../../outside.txt"),
        entry("link", tarfile.SYMTYPE, "/etc/passwd"),
        entry("hard", tarfile.LNKTYPE, "ok/a.txt"),
        entry("dev", tarfile.CHRTYPE),
    ]
    data = {e.name: b"payload" for e in entries if e.type == tarfile.REGTYPE}
    got = collect_outputs(archive(entries, data), dest, cap=1 << 20, declared={"ok/a.txt": "d"})
    assert [(a.path, a.declared, a.description) for a in got.artifacts] == [("ok/a.txt", True, "d")]
    assert (dest / "ok/a.txt").read_bytes() == b"payload"
    assert not outside.exists()
    assert sorted(os.listdir(dest)) == ["ok"]
    assert len(got.warnings) == 6 and got.partial


def test_cap_stops_collection(tmp_path: Path) -> None:
    entries = [entry("a"), entry("b")]
    got = collect_outputs(archive(entries, {"a": b"x" * 600, "b": b"y" * 600}), tmp_path, cap=1000, declared={})
    assert [a.path for a in got.artifacts] == ["a"] and "cap" in got.warnings[0] and got.partial


def test_existing_symlink_in_destination_is_not_followed(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    (dest / "a.txt").symlink_to(victim)
    got = collect_outputs(archive([entry("a.txt")], {"a.txt": b"new"}), dest, cap=1 << 20, declared={})
    assert victim.read_text() == "original" and got.conflicts == ["a.txt"]


def test_garbage_archive_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    got = collect_outputs(io.BytesIO(b"\x00not a tar" * 100), tmp_path, cap=1 << 20, declared={})
    assert got.artifacts == [] and got.warnings


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/output/a/b.txt", "a/b.txt"), ("a/./b", "a/b"), ("/etc/passwd", None), ("../x", None), ("/output", None)],
)
def test_normalise_output_path(path: str, expected: str | None) -> None:
    assert normalise_output_path(path) == expected


def _tree(root: Path, sources: str, os_release: str = "VERSION_CODENAME=bookworm\n") -> Path:
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(sources)
    return root


def test_apt_mirror_reads_deb822_sources(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        (
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
            "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n"
        ),
    )
    assert apt_mirror(root) == ("http://mirror.example/debian", "bookworm")


def test_apt_mirror_reads_one_line_sources(tmp_path: Path) -> None:
    root = _tree(tmp_path, "", "VERSION_CODENAME=jammy\n")
    (root / "etc/apt/sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://archive.example/ubuntu jammy main universe\n"
        "deb http://archive.example/ubuntu jammy-updates main\n"
    )
    assert apt_mirror(root) == ("http://archive.example/ubuntu", "jammy")


def test_apt_mirror_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no Debian or Ubuntu mirror"):
        apt_mirror(_tree(tmp_path, ""))


def test_image_tag_follows_content(tmp_path: Path) -> None:
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "Dockerfile.sandbox").write_text("FROM x\n")
    (tmp_path / "sandbox/entrypoint.py").write_text("print(1)\n")
    first = image_tag("base:1", tmp_path)
    assert first == image_tag("base:1", tmp_path) and first.startswith("harness-sandbox:")
    assert image_tag("base:2", tmp_path) != first
    (tmp_path / "sandbox/__pycache__").mkdir()
    (tmp_path / "sandbox/__pycache__/x.pyc").write_bytes(b"junk")
    assert image_tag("base:1", tmp_path) == first
    (tmp_path / "sandbox/entrypoint.py").write_text("print(2)\n")
    assert image_tag("base:1", tmp_path) != first
