"""The trust store: reviewers' decisions, authenticated, in the data directory (never in ``generated/``).

Every decision (approve, reject, grant, promote) is one entry of ``<data_dir>/review/audit.log``.
Each entry carries the record's whole trust state after the decision (status, the sha256 of the
reviewed bytes, granted hosts, whether raised limits are allowed, reviewer, time, and for a
promotion the scaffold's files and egress) and an HMAC-SHA256 over its content and the previous
entry's MAC, under a per-user key kept 0600 beside the log. A plain hash chain could be recomputed
by anyone who can write the file; without the key, an edited, reordered or forged entry does not
verify. ``audit.head`` (MACed too) holds the entry count and last MAC, so a truncated log is
detected as well. The current state of a record is its last entry; a record with none is not
reviewed. The key is per user and per machine: approvals do not travel by copying files.

What this cannot detect: someone who can read the key (the same user) rewriting everything, or all
three files replaced together by an older copy of themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import Tampered

__all__ = ["Approval", "AuditEntry", "ScaffoldSeal", "TrustStore", "seal_folder"]

TrustStatus = Literal["approved", "rejected", "promoted"]
_KEY_BYTES = 32
_GENESIS = "0" * 64


class ScaffoldSeal(BaseModel):
    """What promotion wrote: every regular file of the scaffold's folder by hash, and its egress."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    files: tuple[tuple[str, str], ...] = Field(description="(path relative to the folder, sha256), sorted")
    egress: tuple[str, ...] = ()


class Approval(BaseModel):
    """A record's trust state after a reviewer's decision; only the trust store writes these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    status: TrustStatus
    sha256: str | None = Field(None, description="the exact bytes reviewed")
    granted_hosts: tuple[str, ...] = ()
    raised_limits: bool = Field(False, description="runs may use limits above the defaults")
    reviewer: str
    note: str = ""
    at: str
    promoted_as: str | None = None
    scaffold: ScaffoldSeal | None = None


class AuditEntry(BaseModel):
    """One line of the audit log: a decision, chained to the one before by its MAC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    action: str
    approval: Approval
    prev: str
    mac: str = ""


class _Head(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int
    last: str
    mac: str


def seal_folder(folder: Path, name: str, egress: tuple[str, ...]) -> ScaffoldSeal:
    """Hash every regular file under ``folder`` (sorted); anything else is listed so it cannot match."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            files.append((rel, hashlib.sha256(path.read_bytes()).hexdigest()))
        elif not stat.S_ISDIR(mode):
            files.append((rel, "not-a-regular-file"))
    return ScaffoldSeal(name=name, files=tuple(files), egress=tuple(egress))


def _canonical(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class TrustStore:
    """``<data_dir>/review/``: the key, the HMAC-chained audit log and its head, and the lock."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "review"
        self.log_path = self.dir / "audit.log"
        self.head_path = self.dir / "audit.head"
        self._key: bytes | None = None
        self._holding = threading.local()  # this thread holds the exclusive lock (flock is not reentrant)

    # -- the key ----------------------------------------------------------------------------------
    def key(self) -> bytes:
        """The per-user key, created 0600 on first use; Tampered if its file is not ours alone."""
        if self._key is None:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.dir / "key"
            if not os.path.lexists(path):
                self._create_key(path)
            self._key = self._read_key(path)
        return self._key

    def _create_key(self, path: Path) -> None:
        # Written in full under a private name, then linked: a reader never sees a half-written key,
        # and of two processes racing to create it, exactly one link wins.
        tmp = path.with_name(f".key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, secrets.token_bytes(_KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    def _read_key(self, path: Path) -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise Tampered(f"the review key {path} cannot be opened ({exc.strerror})", path=str(path)) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
                raise Tampered(
                    f"the review key {path} must be a regular file owned by you with mode 0600",
                    hint="no approval is trusted until it is fixed",
                    path=str(path),
                )
            key = os.read(fd, _KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(key) != _KEY_BYTES:
            raise Tampered(f"the review key {path} has the wrong size", path=str(path))
        return key

    def _mac(self, *parts: bytes) -> str:
        return hmac.new(self.key(), b"\n".join(parts), hashlib.sha256).hexdigest()

    # -- reading, verified ------------------------------------------------------------------------
    def entries(self) -> list[AuditEntry]:
        """Every decision, oldest first; Tampered when the chain or its head does not verify."""
        if getattr(self._holding, "yes", False):
            return self._entries()
        if not self.dir.is_dir():
            return []
        # A shared lock: a writer's log line and head are seen together or not at all.
        with self._flock(fcntl.LOCK_SH):
            return self._entries()

    def _entries(self) -> list[AuditEntry]:
        try:
            lines = self.log_path.read_bytes().splitlines()
        except FileNotFoundError:
            lines = []
        head = self._head()
        if not lines and head is None:
            return []
        entries: list[AuditEntry] = []
        prev = _GENESIS
        for number, line in enumerate(lines, 1):
            try:
                entry = AuditEntry.model_validate_json(line)
            except (ValidationError, ValueError):
                raise self._broken(f"line {number} is not an audit entry") from None
            expected = self._mac(prev.encode(), _canonical(entry.model_dump(mode="json", exclude={"mac"})))
            if entry.seq != number or entry.prev != prev or not hmac.compare_digest(entry.mac, expected):
                raise self._broken(f"line {number} does not verify")
            entries.append(entry)
            prev = entry.mac
        if head is None or head.count != len(entries) or not hmac.compare_digest(head.last, prev):
            raise self._broken("it does not end where its head says (truncated or extended)")
        return entries

    def _head(self) -> _Head | None:
        try:
            head = _Head.model_validate_json(self.head_path.read_bytes())
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError):
            raise self._broken("its head is damaged") from None
        if not hmac.compare_digest(head.mac, self._mac(b"head", str(head.count).encode(), head.last.encode())):
            raise self._broken("its head does not verify")
        return head

    def _broken(self, why: str) -> Tampered:
        return Tampered(
            f"the review audit log {self.log_path} was altered: {why}",
            hint="no approval is trusted; move the folder aside and review again",
            path=str(self.log_path),
        )

    def current(self, record_id: str) -> Approval | None:
        """The record's trust state (its last verified decision), or None when never reviewed."""
        found = None
        for entry in self.entries():
            if entry.approval.record_id == record_id:
                found = entry.approval
        return found

    def sealed(self, scaffold_name: str) -> Approval | None:
        """The last verified promotion that wrote the scaffold ``scaffold_name``, if any."""
        states: dict[str, Approval] = {}
        for entry in self.entries():
            states[entry.approval.record_id] = entry.approval
        for approval in states.values():
            if approval.status == "promoted" and approval.scaffold and approval.scaffold.name == scaffold_name:
                return approval
        return None

    # -- writing, under the lock ------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock file (fcntl.flock) for a read-decide-write sequence."""
        with self._flock(fcntl.LOCK_EX):
            self._holding.yes = True
            try:
                yield
            finally:
                self._holding.yes = False

    @contextlib.contextmanager
    def _flock(self, operation: int) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, operation)
            yield
        finally:
            os.close(fd)

    def append(self, action: str, approval: Approval) -> AuditEntry:
        """Chain one decision onto the log; call it while holding ``locked()``."""
        if not getattr(self._holding, "yes", False):
            raise RuntimeError("TrustStore.append needs the lock: use it inside `with store.locked():`")
        entries = self.entries()
        prev = entries[-1].mac if entries else _GENESIS
        entry = AuditEntry(seq=len(entries) + 1, action=action, approval=approval, prev=prev)
        mac = self._mac(prev.encode(), _canonical(entry.model_dump(mode="json", exclude={"mac"})))
        entry = entry.model_copy(update={"mac": mac})
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, entry.model_dump_json().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        head = _Head(count=entry.seq, last=mac, mac=self._mac(b"head", str(entry.seq).encode(), mac.encode()))
        tmp = self.head_path.with_name(f".audit.head.{os.getpid()}.tmp")
        tmp.write_text(head.model_dump_json(), encoding="utf-8")
        os.replace(tmp, self.head_path)
        return entry
