"""Input archives from clients: checked whole, then written under a fresh folder, nothing else.

A client's tar is hostile input. Every member is checked before a byte reaches the host's
disk: only regular files and folders (no links, devices or fifos), relative names with no
``..`` and no empty or odd parts, bounded count and total size. Files are then written
with ``O_EXCL | O_NOFOLLOW`` under a folder this server just made, so even a check missed
here could not write outside it or through a link.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path, PurePosixPath

from harness.errors import InvalidInput

__all__ = ["MAX_INPUT_FILES", "extract_inputs", "validate_inputs"]

MAX_INPUT_FILES = 10_000
_MAX_NAME = 4096
_MAX_PART = 255


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, hint="send a plain tar of regular files and folders", name="inputs_tar")


def _clean_name(raw: str) -> PurePosixPath:
    name = raw.removeprefix("./").rstrip("/")
    if not name or len(name) > _MAX_NAME or "\x00" in name or "\\" in name:
        raise _bad(f"unusable member name {raw[:200]!r} in the inputs tar")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise _bad(f"absolute name {raw[:200]!r} in the inputs tar")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", "..") or len(part) > _MAX_PART:
            raise _bad(f"member name {raw[:200]!r} in the inputs tar has an empty, '.', '..' or over-long part")
    return PurePosixPath(*parts)


def validate_inputs(blob: bytes, max_bytes: int) -> list[tuple[PurePosixPath, tarfile.TarInfo]]:
    """The tar's members as (clean relative name, info), after checking all of them; InvalidInput otherwise."""
    if len(blob) > max_bytes * 2 + 1024 * 1024:
        raise _bad(f"the inputs tar is larger than the {max_bytes} byte input limit allows")
    try:
        tar = tarfile.open(fileobj=io.BytesIO(blob), mode="r:")
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _bad(f"the inputs are not a readable uncompressed tar: {exc}") from None
    if len(members) > MAX_INPUT_FILES:
        raise _bad(f"the inputs tar has {len(members)} members; at most {MAX_INPUT_FILES}")
    seen: set[PurePosixPath] = set()
    total = 0
    checked = []
    for info in members:
        name = _clean_name(info.name)
        if not (info.isreg() or info.isdir()):
            raise _bad(f"member {info.name[:200]!r} of the inputs tar is not a regular file or folder")
        if name in seen:
            raise _bad(f"member {info.name[:200]!r} appears twice in the inputs tar")
        seen.add(name)
        total += info.size if info.isreg() else 0
        if total > max_bytes:
            raise _bad(f"the inputs hold more than the {max_bytes} byte input limit")
        checked.append((name, info))
    # A file may not also be a folder's parent ("a" as a file and "a/b").
    files = {n for n, i in checked if i.isreg()}
    for name, _ in checked:
        for parent in name.parents:
            if parent in files:
                raise _bad(f"{parent} is both a file and a folder in the inputs tar")
    return checked


def extract_inputs(blob: bytes, dest: Path, max_bytes: int) -> tuple[Path, ...]:
    """Check ``blob`` and write it under the new folder ``dest``; the top-level entries (each one /input/NAME)."""
    checked = validate_inputs(blob, max_bytes)
    # Readable by the script's uid: the folders are bind-mounted read-only into the container.
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.mkdir(mode=0o755)
    tar = tarfile.open(fileobj=io.BytesIO(blob), mode="r:")
    top: dict[str, Path] = {}
    dir_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name, info in sorted(checked, key=lambda item: len(item[0].parts)):
            top.setdefault(name.parts[0], dest / name.parts[0])
            for depth in range(1, len(name.parts) + (1 if info.isdir() else 0)):
                # Parents made here, relative to our own folder's descriptor, never following links.
                try:
                    os.mkdir("/".join(name.parts[:depth]), 0o755, dir_fd=dir_fd)
                except FileExistsError:
                    pass
            if info.isreg():
                source = tar.extractfile(info)
                assert source is not None  # a regular member always has data
                fd = os.open(str(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
    finally:
        os.close(dir_fd)
    return tuple(top.values())
