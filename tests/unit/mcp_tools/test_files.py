"""Input files by content (names, caps, base64, the private folder) and small outputs read back inline."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from harness.errors import InvalidInput
from harness.mcp.files import (
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_INLINE_BYTES,
    MAX_INLINE_TOTAL,
    MAX_TOTAL_BYTES,
    check_name,
    decode_inputs,
    input_folder,
    read_inline,
)
from harness.records import Artifact


@pytest.mark.parametrize("name", ["data.csv", "a", "_x-1.tar.gz", "README", "9.txt"])
def test_plain_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../x", "folder separator"),
        ("a/b", "folder separator"),
        ("a\\b", "folder separator"),
        (".env", "starts with a dot"),
        ("..", "starts with a dot"),
        ("", "not accepted"),
        ("-rf", "not accepted"),
        ("a b", "not accepted"),
        ("x\x1b[2J", "not accepted"),
        ("é.txt", "not accepted"),
        ("x" * 101, "not accepted"),
    ],
)
def test_unsafe_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as caught:
        check_name(name)
    assert caught.value.name == "files"
    assert "\x1b" not in caught.value.one_line()  # the name is quoted with its controls escaped


def test_text_and_base64_files_decode_to_bytes() -> None:
    blob = bytes(range(256))
    got = decode_inputs({"a.txt": "héllo\n"}, {"b.bin": base64.b64encode(blob).decode()})
    assert got == {"a.txt": "héllo\n".encode(), "b.bin": blob}


def test_bad_base64_duplicates_and_caps_are_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid base64"):
        decode_inputs({}, {"b.bin": "not base64!"})
    with pytest.raises(InvalidInput, match="given twice"):
        decode_inputs({"a": "x"}, {"a": base64.b64encode(b"x").decode()})
    with pytest.raises(InvalidInput, match=f"more than {MAX_FILES}"):
        decode_inputs({f"f{i}": "" for i in range(MAX_FILES + 1)}, {})
    with pytest.raises(InvalidInput, match="byte cap"):
        decode_inputs({"big": "x" * (MAX_FILE_BYTES + 1)}, {})
    per_file = MAX_FILE_BYTES
    count = MAX_TOTAL_BYTES // per_file + 1
    with pytest.raises(InvalidInput, match="total cap"):
        decode_inputs({f"f{i}": "x" * per_file for i in range(count)}, {})


def test_input_folder_is_private_readable_by_the_sandbox_and_removed_after() -> None:
    with input_folder({"a.txt": b"1", "b.bin": b"\x00"}) as paths:
        assert [p.name for p in paths] == ["a.txt", "b.bin"]
        folder = paths[0].parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(paths[0].stat().st_mode) == 0o644  # a cold run bind-mounts the file itself
        assert paths[1].read_bytes() == b"\x00"
    assert not folder.exists()
    with input_folder({}) as none:
        assert none == ()


def _artifact(root: Path, name: str, data: bytes) -> Artifact:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Artifact(path=name, size=len(data))


def test_small_text_outputs_come_back_inline_with_controls_escaped(tmp_path: Path) -> None:
    items = [
        _artifact(tmp_path, "a.txt", b"line one\nred \x1b[31m\n"),
        _artifact(tmp_path, "sub/b.json", b'{"x": 1}'),
        _artifact(tmp_path, "bin.dat", b"\x00\x01\x02"),
        _artifact(tmp_path, "latin1.txt", b"caf\xe9"),
        _artifact(tmp_path, "big.txt", b"x" * (MAX_INLINE_BYTES + 1)),
    ]
    inline = read_inline(tmp_path, items)
    assert inline == {"a.txt": "line one\nred \\x1b[31m\n", "sub/b.json": '{"x": 1}'}


def test_inline_reads_no_links_nothing_outside_and_stop_at_the_total(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    root = tmp_path / "out"
    root.mkdir()
    os.symlink(secret, root / "link.txt")
    listed = [
        Artifact(path="link.txt", size=11),
        Artifact(path="../secret.txt", size=11),
    ]
    assert read_inline(root, listed) == {}
    many = [
        _artifact(root, f"f{i}.txt", b"y" * MAX_INLINE_BYTES) for i in range(MAX_INLINE_TOTAL // MAX_INLINE_BYTES + 2)
    ]
    inline = read_inline(root, many)
    assert sum(len(text) for text in inline.values()) <= MAX_INLINE_TOTAL
    assert len(inline) == MAX_INLINE_TOTAL // MAX_INLINE_BYTES
