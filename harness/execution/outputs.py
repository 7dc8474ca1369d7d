"""Collecting a run's /output archive onto the host, trusting none of it.

Only regular files and folders are written. Absolute paths, ``..``, symlinks, hard links
and device entries are refused and reported; files are created fresh (never followed
through an existing link) inside the destination, and the total size is capped.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

from harness.records import Artifact

__all__ = ["collect_outputs", "normalise_output_path"]

_CHUNK = 1024 * 1024


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


def collect_outputs(
    archive: IO[bytes], dest: Path | None, *, cap: int, declared: dict[str, str]
) -> tuple[list[Artifact], list[str]]:
    """Read a tar stream of /output; write it under ``dest`` (if given). Returns artifacts and warnings."""
    artifacts: list[Artifact] = []
    warnings: list[str] = []
    total = 0
    made_dirs: set[Path] = set()
    if dest is not None:
        dest = dest.resolve()
    try:
        with tarfile.open(fileobj=archive, mode="r|") as tar:
            for member in tar:
                name = normalise_output_path(member.name)
                if name is None:
                    if member.name not in (".", "./", ""):
                        warnings.append(f"refused {member.name!r}: outside /output")
                    continue
                if member.isdir():
                    if dest is not None:
                        _make_dir(dest, name, made_dirs)
                    continue
                if not member.isfile():
                    what = "symlink" if member.issym() else "hard link" if member.islnk() else "special file"
                    warnings.append(f"refused {name!r}: {what}")
                    continue
                if total + member.size > cap:
                    warnings.append(f"stopped at {name!r}: outputs over the {cap} byte cap")
                    break
                total += member.size
                if dest is not None:
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    _write_file(dest, name, source, made_dirs)
                artifacts.append(
                    Artifact(path=name, size=member.size, declared=name in declared, description=declared.get(name, ""))
                )
    except (tarfile.TarError, EOFError, OSError) as exc:
        warnings.append(f"output archive ended early or is malformed: {exc}")
    return artifacts, warnings


def _make_dir(dest: Path, name: str, made: set[Path]) -> Path:
    target = dest
    for part in name.split("/"):
        target = target / part
        if target in made:
            continue
        # A folder we did not make ourselves is only acceptable if it is a real directory.
        if target.is_symlink():
            raise OSError(f"{target} is a symlink")
        target.mkdir(mode=0o755, exist_ok=True)
        made.add(target)
    return target


def _write_file(dest: Path, name: str, source: IO[bytes], made: set[Path]) -> None:
    parent, _, leaf = name.rpartition("/")
    folder = _make_dir(dest, parent, made) if parent else dest
    target = folder / leaf
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise OSError(f"{target} exists and is not a regular file")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            out.write(chunk)
