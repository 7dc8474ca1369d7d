"""What a run was made from, recorded so it can be checked and repeated (``harness rerun``).

A :class:`Provenance` goes into every run's ``report.json`` (and, for ``harness exec``, into the
run folder's ``provenance.json``): the command line as given, each input's resolved path, size
and SHA-256 (a folder's files each, up to a cap, with a count of the rest), the parameters given
and those actually used, the strategy, scaffold and its version or the generated script's id and
hash, the limits, the runtime settings that change a result, and the harness version.

Secrets are never recorded: environment values (``--env NAME=VALUE``) keep only their names, and
a parameter whose name looks like a secret (``token``, ``password``, ``api_key`` ...) keeps
``<redacted>`` instead of its value, on the command line and in the parameters alike.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "MAX_HASHED_BYTES",
    "MAX_HASHED_FILES",
    "REDACTED",
    "InputFile",
    "InputRecord",
    "Provenance",
    "check_inputs",
    "harness_version",
    "looks_secret",
    "record_inputs",
    "redact_argv",
    "redact_params",
    "sha256_text",
]

REDACTED = "<redacted>"
MAX_HASHED_FILES = 1000  # per input folder; the rest are counted, not hashed
MAX_HASHED_BYTES = 1 << 30  # per input file or folder; past it, sizes only
_SECRET = re.compile(r"pass(word|wd|phrase)?|secret|token|api[_-]?key|apikey|credential|auth|cookie|session|private")
# Options whose NAME=VALUE argument carries a value that may be secret: env values always are.
_ENV_OPTIONS = ("--env", "-e")
_PARAM_OPTIONS = ("--param", "-p")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputFile(_Model):
    """One file of an input folder, by its path inside the folder."""

    path: str
    size: int
    sha256: str


class InputRecord(_Model):
    """One ``--input`` as given, and what it was when the run started."""

    given: str = Field(description="the path as given")
    resolved: str = Field(description="the absolute path it resolved to")
    kind: Literal["file", "folder", "missing"]
    size: int = Field(0, description="bytes: the file's, or the folder's regular files' together")
    sha256: str | None = Field(None, description="a file's hash (None past the cap: its size is compared)")
    files: tuple[InputFile, ...] = Field((), description="a folder's regular files, hashed, up to the caps")
    not_hashed: int = Field(0, description="a folder's files past the caps (or unreadable): counted, not hashed")
    skipped: int = Field(0, description="a folder's entries that are not regular files (links, devices): not read")


class Provenance(_Model):
    """What a run was made from: enough to check it and to repeat it."""

    kind: Literal["run", "exec"]
    argv: tuple[str, ...] = Field((), description="the command line as given, secrets redacted")
    harness_version: str
    request: str | None = None
    inputs: tuple[InputRecord, ...] = ()
    params_given: dict[str, str] = Field(default_factory=dict, description="parameters the caller gave")
    params_used: dict[str, JsonValue] = Field(
        default_factory=dict, description="the parameters the script ran with: given, and bound from request and data"
    )
    params_bound: dict[str, JsonValue] = Field(
        default_factory=dict, description="of those used, the ones read from the request and the data (not given)"
    )
    param_notes: tuple[str, ...] = Field((), description="where each value read from the request came from")
    strategy: str | None = None
    template: str | None = None
    template_version: str | None = None
    generated_id: str | None = Field(None, description="the generated script that ran (reviewed through its id)")
    script_sha256: str | None = Field(None, description="the exact script that ran")
    limits: dict[str, JsonValue] = Field(default_factory=dict, description="the limits applied (receipt)")
    limit_overrides: dict[str, JsonValue] = Field(default_factory=dict, description="limits the caller changed")
    output_dir: str | None = None
    output_mode: str = "new"
    env_keys: tuple[str, ...] = Field((), description="environment names given to the script; values never kept")
    allow_hosts: tuple[str, ...] = ()
    runtime: dict[str, str] = Field(default_factory=dict, description="settings that change a result: runtime, image")
    rerun_of: str | None = Field(None, description="the run this one repeated")


def harness_version() -> str:
    """The installed harness's version."""
    from harness import __version__

    return __version__


def looks_secret(name: str) -> bool:
    """True when a parameter's name suggests its value is a secret."""
    return bool(_SECRET.search(name.lower()))


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the values of secret-looking names replaced by ``<redacted>``."""
    return {k: (REDACTED if looks_secret(k) else v) for k, v in params.items()}


def redact_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """The command line with every ``--env`` value and every secret-looking ``--param`` value redacted."""
    out: list[str] = []
    pending: str | None = None  # the option whose NAME=VALUE comes next
    for arg in argv:
        if pending is not None:
            out.append(_redact_pair(arg, always=pending in _ENV_OPTIONS))
            pending = None
            continue
        option, eq, value = arg.partition("=")
        if option in (*_ENV_OPTIONS, *_PARAM_OPTIONS) and eq:
            out.append(f"{option}={_redact_pair(value, always=option in _ENV_OPTIONS)}")
        elif arg in (*_ENV_OPTIONS, *_PARAM_OPTIONS):
            out.append(arg)
            pending = arg
        else:
            out.append(arg)
    return tuple(out)


def _redact_pair(pair: str, *, always: bool) -> str:
    name, sep, _ = pair.partition("=")
    if not sep:
        return pair
    return f"{name}={REDACTED}" if always or looks_secret(name) else pair


def sha256_text(text: str) -> str:
    """The SHA-256 of a script's text as it is sent (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_inputs(
    inputs: Iterable[Path], *, max_files: int = MAX_HASHED_FILES, max_bytes: int = MAX_HASHED_BYTES
) -> tuple[InputRecord, ...]:
    """Each input's path, size and hash now (a folder's files up to the caps); links are never followed."""
    return tuple(_record(Path(p), max_files, max_bytes) for p in inputs)


def _record(given: Path, max_files: int, max_bytes: int) -> InputRecord:
    resolved = given.expanduser().resolve()
    try:
        st = resolved.stat()
    except OSError:
        return InputRecord(given=str(given), resolved=str(resolved), kind="missing")
    if stat.S_ISREG(st.st_mode):
        # Past the cap a file is not hashed (a run must not wait for gigabytes): its size stands in.
        digest = _hash_file(resolved) if st.st_size <= max_bytes else None
        return InputRecord(
            given=str(given),
            resolved=str(resolved),
            kind="file",
            size=st.st_size,
            sha256=digest,
            not_hashed=0 if digest else 1,
        )
    files: list[InputFile] = []
    total = hashed_bytes = not_hashed = skipped = 0
    for folder, dirs, names in os.walk(resolved):
        dirs.sort()
        for name in sorted(names):
            full = Path(folder, name)
            try:
                entry = full.lstat()
            except OSError:
                not_hashed += 1
                continue
            if not stat.S_ISREG(entry.st_mode):
                skipped += 1
                continue
            total += entry.st_size
            digest = None
            if len(files) < max_files and hashed_bytes + entry.st_size <= max_bytes:
                digest = _hash_file(full)
            if digest is None:
                not_hashed += 1
                continue
            hashed_bytes += entry.st_size
            files.append(InputFile(path=full.relative_to(resolved).as_posix(), size=entry.st_size, sha256=digest))
    return InputRecord(
        given=str(given),
        resolved=str(resolved),
        kind="folder",
        size=total,
        files=tuple(files),
        not_hashed=not_hashed,
        skipped=skipped,
    )


def _hash_file(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def check_inputs(recorded: Sequence[InputRecord]) -> tuple[list[str], list[str]]:
    """Compare recorded inputs with what is there now: (gone, changed), one line each.

    Gone: an input path (or a hashed file of a folder) that no longer exists. Changed: a file
    whose hash differs, a folder with files added, or one that is no longer the same kind.
    """
    gone: list[str] = []
    changed: list[str] = []
    for before in recorded:
        if before.kind == "missing":
            continue
        now = _record(Path(before.resolved), MAX_HASHED_FILES, MAX_HASHED_BYTES)
        if now.kind == "missing":
            gone.append(f"{before.given} ({before.resolved}) is gone")
        elif now.kind != before.kind:
            changed.append(f"{before.given} was a {before.kind}, now a {now.kind}")
        elif before.kind == "file" and before.sha256 is None and now.size != before.size:
            changed.append(f"{before.given} changed since the run (size {before.size} → {now.size} bytes)")
        elif before.kind == "file" and before.sha256 is not None and now.sha256 != before.sha256:
            hashes = f"sha256 {_short(before.sha256)} → {_short(now.sha256)}"
            changed.append(f"{before.given} changed since the run ({hashes})")
        elif before.kind == "folder":
            then = {f.path: f.sha256 for f in before.files}
            current = {f.path: f.sha256 for f in now.files}
            for path in sorted(then):
                if path not in current and not (Path(before.resolved) / path).exists():
                    gone.append(f"{before.given}/{path} is gone")
                elif path in current and current[path] != then[path]:
                    changed.append(f"{before.given}/{path} changed since the run")
            added = sorted(set(current) - set(then))
            if added and len(then) + before.not_hashed < len(current) + now.not_hashed:
                changed.append(f"{before.given} has {len(added)} new file(s), e.g. {added[0]}")
    return gone, changed


def _short(digest: str | None) -> str:
    return (digest or "none")[:12]
