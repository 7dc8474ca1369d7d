"""Files across the MCP boundary: input files given by content, small outputs given back inline.

An agent sends input files as text or base64 inside the tool call. They are written to a fresh
private folder, one file per name, and handed to the run as ordinary inputs (so the sandbox
sees ``/input/NAME``). A name is a single plain file name: no folder separators, no dot-names,
nothing a shell or a terminal would read as something else. Sizes are capped per file, in
total, and in count, before anything is written.

On the way back, outputs were already collected into the run folder by the backend's safe
collector; here the small text ones are read again, without following links and never outside
that folder, and shown through ``visible`` like everything else a script wrote.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.errors import InvalidInput
from harness.records import Artifact
from harness.safe_text import visible

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_INLINE_BYTES",
    "MAX_INLINE_TOTAL",
    "MAX_TOTAL_BYTES",
    "check_name",
    "decode_inputs",
    "input_folder",
    "read_inline",
]

MAX_FILES = 64
MAX_FILE_BYTES = 8 * 1024 * 1024
# Under Limits.input_size's default (64 MiB), so a pooled container can take them by copy.
MAX_TOTAL_BYTES = 32 * 1024 * 1024
MAX_INLINE_BYTES = 16 * 1024  # an output at most this big, and text, is returned in the tool result
MAX_INLINE_TOTAL = 64 * 1024  # all inline outputs of one result together
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")


def check_name(name: str) -> str:
    """``name`` if it can be an input file's name; InvalidInput saying why not."""
    shown = visible(name[:120])
    if "/" in name or "\\" in name:
        raise InvalidInput(
            f"input file name {shown!r} contains a folder separator", hint="use a plain file name", name="files"
        )
    if name.startswith("."):
        raise InvalidInput(
            f"input file name {shown!r} starts with a dot", hint="dot-names are not accepted", name="files"
        )
    if not _NAME.match(name):
        raise InvalidInput(
            f"input file name {shown!r} is not accepted",
            hint="use 1-100 letters, digits, '_', '-' and '.', starting with a letter, digit or '_'",
            name="files",
        )
    return name


def decode_inputs(files: Mapping[str, str], files_base64: Mapping[str, str]) -> dict[str, bytes]:
    """The input files as bytes by name: text as UTF-8, the rest from base64; every name and cap checked."""
    if len(files) + len(files_base64) > MAX_FILES:
        raise InvalidInput(f"more than {MAX_FILES} input files", hint="pack them into an archive", name="files")
    decoded: dict[str, bytes] = {}
    total = 0
    for field, items in (("files", files), ("files_base64", files_base64)):
        for name, content in items.items():
            check_name(name)
            if name in decoded:
                raise InvalidInput(f"input file {name!r} is given twice", hint="give each name once", name=field)
            if field == "files":
                data = content.encode("utf-8", errors="surrogatepass")
            else:
                try:
                    data = base64.b64decode(content, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidInput(
                        f"input file {name!r} is not valid base64", hint="send standard base64", name=field
                    ) from None
            if len(data) > MAX_FILE_BYTES:
                raise InvalidInput(
                    f"input file {name!r} has {len(data)} bytes, over the {MAX_FILE_BYTES} byte cap", name=field
                )
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise InvalidInput(f"input files over the {MAX_TOTAL_BYTES} byte total cap", name=field)
            decoded[name] = data
    return decoded


@contextmanager
def input_folder(files: Mapping[str, bytes]) -> Iterator[tuple[Path, ...]]:
    """Write ``files`` into a fresh private folder; yield their paths (the run's inputs); remove it after."""
    if not files:
        yield ()
        return
    folder = Path(tempfile.mkdtemp(prefix="harness-mcp-inputs-"))  # 0700: no other host user reads them
    try:
        paths = []
        for name, data in files.items():
            path = folder / check_name(name)
            # 0644: a cold run bind-mounts the file itself, and the script's uid must read it there.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            paths.append(path)
        yield tuple(paths)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_inline(root: Path, artifacts: Sequence[Artifact]) -> dict[str, str]:
    """The small UTF-8 text outputs under ``root`` by path, shown through ``visible``, within the inline caps."""
    inline: dict[str, str] = {}
    budget = MAX_INLINE_TOTAL
    base = root.resolve()
    for artifact in artifacts:
        if artifact.size > MAX_INLINE_BYTES or artifact.size > budget:
            continue
        path = (base / artifact.path).resolve()
        if not path.is_relative_to(base):
            continue
        data = _read_regular(path, MAX_INLINE_BYTES)
        if data is None or b"\x00" in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        budget -= len(data)
        inline[artifact.path] = visible(text, lines=True)
    return inline


def _read_regular(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a regular file, never through a link; None when it is anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read(limit + 1)
    return None if len(data) > limit else data
