"""Collecting a run's /output archive onto the host, trusting none of it.

Every name, type, size and count in the archive comes from the script, so all of it is
hostile input. The design, rather than a list of bad names, is what keeps a run from
planting anything the user's tools would act on:

- Outputs go into a folder harness makes fresh, marked with ``.harness-output`` so a
  later ``--overwrite`` can tell it from a folder the user made (a checkout, a home).
  A non-empty folder is refused unless the user asked: ``merge`` adds new files only and
  never writes the marker (a merged folder is not ours, so it can never become
  overwritable); ``overwrite`` replaces only a folder that carries the marker.
- No name starting with a dot is written at any depth: dot-files and dot-folders are
  where tools keep configuration that runs code (``.git/config``, ``.envrc``, hooks),
  and they hide from a plain ``ls``. A few names that tools import on discovery
  (``conftest.py``, ``*.pth``, ``sitecustomize.py``) are refused as well.
- Files are created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` (an existing file is a conflict,
  never overwritten), 0644 before umask: no execute bit, ever. Folders are 0755 and
  walked from a descriptor with ``O_NOFOLLOW|O_DIRECTORY``, so a symlink found (or
  swapped in) anywhere under the destination cannot redirect a write.
- Only regular files and folders are taken; names that are not UTF-8 or hold control
  characters are refused with a warning; the total size and the number of entries are
  capped. Whatever is refused or left out makes the collection ``partial``.

Standard library only (and ``harness.errors``): the thin client applies these same rules to the
outputs tar it downloads from a server, and must not load pydantic to do it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import tarfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from harness.errors import ConfigError, Fix, InputError, OutputExists

if TYPE_CHECKING:
    from harness.execution.limits import Limits
    from harness.execution.stream import RunReader
    from harness.records import Artifact, OutputMode

__all__ = [
    "MARKER",
    "OUTPUT_MODES",
    "Collected",
    "OutputFile",
    "check_destination",
    "collect_outputs",
    "collect_run_outputs",
    "is_harness_output",
    "normalise_output_path",
    "output_mode",
    "prepare_destination",
    "retry_mode",
    "safe_name",
    "write_new_file",
]

MARKER = ".harness-output"
OUTPUT_MODES = ("new", "merge", "overwrite")  # harness.records.OutputMode's values (a test keeps them equal)
_CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Python imports these on start-up or test discovery from whatever folder they sit in.
_EXECUTED_ON_DISCOVERY = frozenset({"conftest.py", "sitecustomize.py", "usercustomize.py"})
# Bidirectional controls reorder what a reader sees; they are format characters, not Cc.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MODES_HINT = "merge to add new files only, or overwrite to replace a folder harness made"


def output_mode(*, merge: bool, overwrite: bool) -> OutputMode:
    """The mode that ``--merge`` / ``--overwrite`` ask for; ConfigError when both are given."""
    if merge and overwrite:
        raise ConfigError("--merge and --overwrite cannot be used together", hint="pick one")
    return "merge" if merge else "overwrite" if overwrite else "new"


def retry_mode(mode: OutputMode) -> OutputMode:
    """The mode for another attempt into the same folder: a folder this run made (or replaced) is ours to replace."""
    return "merge" if mode == "merge" else "overwrite"


def safe_name(name: str) -> str:
    """``name`` as printable text: undecodable bytes and control characters escaped (``\\xff``, ``\\x1b``)."""
    out = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, carried by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif _is_control(ch) or 0xD800 <= code <= 0xDFFF or ch == "\\":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _BIDI


def is_harness_output(path: Path) -> bool:
    """True when ``path`` is a real folder holding harness's marker as a regular file."""
    try:
        folder = os.lstat(path)
        marker = os.lstat(path / MARKER)
    except OSError:
        return False
    return stat.S_ISDIR(folder.st_mode) and stat.S_ISREG(marker.st_mode)


def check_destination(path: Path, mode: OutputMode) -> None:
    """Refuse (InputError) a destination that ``mode`` may not write to; touches nothing."""
    if mode not in OUTPUT_MODES:
        raise ConfigError(f"unknown output mode {mode!r}", hint=f"use one of: {', '.join(OUTPUT_MODES)}")
    path = Path(path).expanduser()
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise OutputExists(
            f"output {path} exists and is not a folder", hint="pick another output folder", path=str(path)
        ).fixed_by(Fix("give_input", "output"))
    try:
        empty = not any(path.iterdir())
    except OSError as exc:
        raise InputError(
            f"output folder {path} cannot be read ({exc.strerror})", hint="pick another output folder"
        ).fixed_by(Fix("give_input", "output")) from None
    if empty:
        return
    if mode == "new":
        raise OutputExists(f"output folder {path} is not empty", hint=_MODES_HINT, path=str(path)).fixed_by(
            Fix("give_input", "output_mode")
        )
    if mode == "overwrite" and not is_harness_output(path.resolve()):
        raise OutputExists(
            f"--overwrite refused: {path} was not made by harness (no {MARKER} marker)",
            hint="only a folder harness made can be replaced; merge to add new files, or pick a new folder",
            path=str(path),
        ).fixed_by(Fix("give_input", "output_merge"))


def prepare_destination(path: Path, mode: OutputMode, run_id: str) -> Path:
    """Make ``path`` ready for a run's outputs as ``mode`` allows; returns the resolved folder."""
    path = Path(path).expanduser()
    check_destination(path, mode)
    try:
        fresh = not path.exists() or not any(path.iterdir())
        if not fresh and mode == "overwrite":
            # is_harness_output was checked above; rmtree does not follow symlinks inside.
            shutil.rmtree(path.resolve())
            fresh = True
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        resolved = path.resolve()
        if fresh:
            marker = json.dumps({"harness_output": 1, "run_id": run_id}) + "\n"
            write_new_file(resolved, MARKER, marker.encode())
        elif not os.access(resolved, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
    except OSError as exc:
        raise InputError(
            f"output directory {path} is not writable ({exc.strerror or exc})", hint="pick another output folder"
        ).fixed_by(Fix("give_input", "output")) from None
    return resolved


def write_new_file(folder: Path, name: str, data: bytes) -> None:
    """Write ``data`` to a new file ``name`` in ``folder``; FileExistsError rather than overwrite."""
    dir_fd = os.open(folder, _DIR_FLAGS)
    try:
        fd = os.open(name, _FILE_FLAGS, 0o644, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    finally:
        os.close(dir_fd)


def normalise_output_path(path: str) -> str | None:
    """``/output/a/b.txt`` or ``a/b.txt`` -> ``a/b.txt``; None when it leaves /output."""
    posix = PurePosixPath(path)
    if posix.is_absolute():
        try:
            posix = posix.relative_to("/output")
        except ValueError:
            return None
    parts = [p for p in posix.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _refusal(name: str) -> str | None:
    """Why ``name`` (normalised) may not be written, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "not a UTF-8 name"
    if any(_is_control(ch) for ch in name):
        return "control character in the name"
    parts = name.split("/")
    if any(part.startswith(".") for part in parts):
        return "names starting with a dot are never written"
    leaf = parts[-1]
    if leaf in _EXECUTED_ON_DISCOVERY or leaf.endswith(".pth"):
        return "Python runs this file when it finds it"
    return None


_MAX_WARNINGS = 20


@dataclass(frozen=True)
class OutputFile:
    """One file collected: its path under /output, size, and what the script declared it to be."""

    path: str
    size: int
    declared: bool = False
    description: str = ""


@dataclass
class Collected:
    """What collection took and left: files, warnings, conflicts, and whether anything was left out."""

    files: list[OutputFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    partial: bool = False
    unlisted: int = field(default=0, repr=False)

    @property
    def artifacts(self) -> list[Artifact]:
        """The files as ``Artifact`` records (for a ``RunResult``)."""
        from harness.records import Artifact

        return [Artifact(path=f.path, size=f.size, declared=f.declared, description=f.description) for f in self.files]

    def leave(self, warning: str) -> None:
        """Note something that was not collected; past a few, only count them (a script can cause millions)."""
        self.partial = True
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(warning)
        else:
            self.unlisted += 1


def collect_outputs(
    archive: IO[bytes],
    dest: Path | None,
    *,
    cap: int,
    declared: dict[str, str],
    max_files: int = 10_000,
) -> Collected:
    """Read a tar stream of /output; write what may be written under ``dest`` (if given)."""
    got = Collected()
    total = 0
    entries = 0
    root_fd: int | None = None
    try:
        if dest is not None:
            try:
                root_fd = os.open(dest, _DIR_FLAGS)
            except OSError as exc:
                got.leave(f"outputs not collected: {safe_name(str(dest))} cannot be opened ({exc.strerror})")
                return got
        with tarfile.open(fileobj=archive, mode="r|") as tar:
            for member in tar:
                if member.name in (".", "./", ""):
                    continue
                entries += 1
                if entries > max_files:
                    shown = safe_name(member.name)
                    got.leave(f"stopped at {shown}: more than {max_files} files and folders in /output")
                    break
                name = normalise_output_path(member.name)
                if name is None:
                    got.leave(f"refused {safe_name(member.name)}: outside /output")
                    continue
                why = _refusal(name)
                if why is None and not (member.isdir() or member.isfile()):
                    why = "symlink" if member.issym() else "hard link" if member.islnk() else "special file"
                if why is not None:
                    got.leave(f"refused {safe_name(name)}: {why}")
                    continue
                if member.isfile() and total + member.size > cap:
                    got.leave(f"stopped at {safe_name(name)}: outputs over the {cap} byte cap")
                    break
                if root_fd is not None:
                    try:
                        written = _place(root_fd, name, tar.extractfile(member) if member.isfile() else None)
                    except OSError as exc:
                        got.leave(f"refused {safe_name(name)}: {exc.strerror or exc}")
                        continue
                    if not written:
                        got.conflicts.append(name)
                        got.leave(f"skipped {safe_name(name)}: it already exists in the destination")
                        continue
                if member.isfile():
                    total += member.size
                    got.files.append(
                        OutputFile(
                            path=name, size=member.size, declared=name in declared, description=declared.get(name, "")
                        )
                    )
    except (tarfile.TarError, EOFError, OSError) as exc:
        got.leave(f"output archive ended early or is malformed: {safe_name(str(exc))}")
    finally:
        if root_fd is not None:
            os.close(root_fd)
    if got.unlisted:
        got.warnings.append(f"and {got.unlisted} more outputs not collected")
    return got


def collect_run_outputs(reader: RunReader, dest: Path | None, limits: Limits) -> Collected:
    """Collect the archive a run's reader spooled (artifacts as the script declared them), then release it."""
    declared = {
        path: e.description
        for e in reader.events
        if e.kind == "artifact" and (path := normalise_output_path(e.path)) is not None
    }
    if reader.archive is None:
        return Collected()
    try:
        return collect_outputs(
            reader.archive, dest, cap=limits.output_size, declared=declared, max_files=limits.output_files
        )
    finally:
        reader.close()


def _place(root_fd: int, name: str, source: IO[bytes] | None) -> bool:
    """Create folder or file ``name`` under ``root_fd``; False when a file of that name exists already."""
    *folders, leaf = name.split("/")
    if source is None:
        folders.append(leaf)
    fds: list[int] = []
    try:
        here = root_fd
        for part in folders:
            try:
                os.mkdir(part, 0o755, dir_fd=here)
            except FileExistsError:
                pass  # an existing real folder is fine; a symlink is refused by the open below
            here = os.open(part, _DIR_FLAGS, dir_fd=here)
            fds.append(here)
        if source is None:
            return True
        try:
            fd = os.open(leaf, _FILE_FLAGS, 0o644, dir_fd=here)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
        return True
    finally:
        for fd in fds:
            os.close(fd)
