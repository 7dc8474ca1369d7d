"""The review queue: every generated script under ``generated/<id>/``, with how it came to be.

``meta.json`` records the request, analysis, strategy, model, prompt hash, every attempt and the
tokens used. Its trust fields (``status``, ``reviewed_sha256``, ``granted_hosts``, ...) only mirror
the trust store (``harness.review.trust``, in the data directory) for display: they are overwritten
from it on every load and save, so a hand-written ``meta.json`` grants nothing. Only
``transition`` and ``grant`` change trust, under the store's lock, from the current verified
state. Runs go to the append-only ``runs.jsonl``, so a run never writes back a record it loaded
before a reviewer decided.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from harness.errors import Conflict, InvalidInput, NotFound, NotReviewed, Tampered, UserError
from harness.review.trust import Approval, ScaffoldSeal, TrustStore

if TYPE_CHECKING:
    from harness.settings import Settings

__all__ = ["Attempt", "GeneratedRecord", "GeneratedStore", "ReviewStatus"]

ReviewStatus = Literal["pending_review", "approved", "rejected", "promoted"]
_ID = re.compile(r"^g-[0-9a-f]{12}$")
# A reviewed script is read whole into memory; anything bigger is not a script a person reviewed.
_MAX_SCRIPT = 4 * 1024 * 1024
_MAX_META = 16 * 1024 * 1024
_MAX_RUNS = 16 * 1024 * 1024


class Attempt(BaseModel):
    """One try at a script: what was asked, what came back, and what the gate or sandbox said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    stage: Literal["generate", "gate_repair", "run_repair", "customise"]
    prompt_summary: str
    response: str = Field(description="the model's text and tool call, shortened")
    code_sha256: str | None = None
    problem: str = ""
    findings: tuple[str, ...] = ()
    gate_passed: bool = False
    run_status: str | None = None
    tokens: int = 0


class GeneratedRecord(BaseModel):
    """``meta.json`` of a generated script; trust fields and ``runs`` are filled in by the store on load."""

    model_config = ConfigDict(extra="forbid")

    id: str
    created_at: str
    request: str
    analysis: dict[str, JsonValue] = Field(default_factory=dict)
    strategy: str
    base_scaffold: str | None = None
    model: str
    prompt_hash: str = ""
    attempts: list[Attempt] = Field(default_factory=list)
    tokens: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    gate_passed: bool = False
    runs: list[str] = Field(default_factory=list)
    status: ReviewStatus = "pending_review"
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    explanation: str = ""
    reviewed_sha256: str | None = Field(None, description="hash of the exact bytes a reviewer approved")
    reviewer: str | None = None
    review_note: str = ""
    granted_hosts: list[str] = Field(default_factory=list, description="egress the reviewer granted these bytes")
    promoted_as: str | None = None


class GeneratedStore:
    """Reads and writes ``generated/<id>/`` folders; trust comes from the store in ``data_dir``."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.trust = TrustStore(data_dir)

    @classmethod
    def from_settings(cls, settings: Settings) -> GeneratedStore:
        """The store for these settings' generated and data directories."""
        return cls(settings.generated_dir, settings.data_dir)

    def new_id(self) -> str:
        """A fresh id for a generated script."""
        return f"g-{uuid.uuid4().hex[:12]}"

    def folder(self, record_id: str) -> Path:
        """The folder of a generated script; InvalidInput for a malformed id."""
        if not _ID.match(record_id):
            raise InvalidInput(
                f"{record_id!r} is not a generated-script id", hint="ids look like g-0123456789ab", name="id"
            )
        return self.root / record_id

    def save(
        self,
        record: GeneratedRecord,
        script: str | None = None,
        attempt_code: dict[int, str] | None = None,
        checks_json: str | None = None,
    ) -> Path:
        """Write meta.json (and the script, attempts and findings when given) atomically.

        The record's trust fields and runs are ignored: meta.json mirrors the trust store, and runs
        live in runs.jsonl.
        """
        folder = self.folder(record.id)
        (folder / "attempts").mkdir(parents=True, exist_ok=True)
        with self.trust.locked():
            if script is not None:
                _write(folder / "script.py", script)
            for number, code in (attempt_code or {}).items():
                _write(folder / "attempts" / f"{number:02d}.py", code)
            if checks_json is not None:
                _write(folder / "checks.json", checks_json)
            self._write_meta(record, self.trust.current(record.id))
        return folder

    def _write_meta(self, record: GeneratedRecord, approval: Approval | None) -> None:
        folder = self.folder(record.id)
        try:
            # Runs listed by older versions stay; new ones are only ever appended to runs.jsonl.
            legacy = json.loads(_read_regular(folder / "meta.json", _MAX_META)).get("runs", [])
        except (OSError, Tampered, ValueError, AttributeError):
            legacy = []
        mirrored = record.model_copy(update={**_trust_fields(approval), "runs": list(legacy)})
        _write(folder / "meta.json", mirrored.model_dump_json(indent=2))

    def load(self, record_id: str) -> tuple[GeneratedRecord, str]:
        """The record (trust from the verified store, runs from runs.jsonl) and its script."""
        record = self.load_record(record_id)
        return record, self.read_script(record_id).decode("utf-8", errors="replace")

    def load_record(self, record_id: str) -> GeneratedRecord:
        """The record alone, with its trust fields from the verified trust store."""
        folder = self.folder(record_id)
        try:
            record = GeneratedRecord.model_validate_json(_read_regular(folder / "meta.json", _MAX_META))
        except FileNotFoundError:
            raise NotFound(
                f"no generated script {record_id}", hint=f"see the folders in {self.root}", id=record_id
            ) from None
        except (ValidationError, ValueError) as exc:
            raise UserError(f"generated script {record_id} has a damaged meta.json", hint=str(exc)[:200]) from None
        return self._overlay(record, self.trust.current(record_id))

    def _overlay(self, record: GeneratedRecord, approval: Approval | None) -> GeneratedRecord:
        runs, outcomes = list(record.runs), {}
        for entry in self.runs(record.id):
            runs.append(str(entry.get("run_id")))
            if isinstance(entry.get("attempt"), int):
                outcomes[entry["attempt"]] = str(entry.get("status"))
        attempts = [
            a.model_copy(update={"run_status": outcomes[a.number]}) if a.number in outcomes else a
            for a in record.attempts
        ]
        return record.model_copy(update={**_trust_fields(approval), "runs": runs, "attempts": attempts})

    def read_script(self, record_id: str) -> bytes:
        """The script's bytes, read once; Tampered unless script.py is a regular file (no FIFO, no symlink)."""
        try:
            return _read_regular(self.folder(record_id) / "script.py", _MAX_SCRIPT)
        except FileNotFoundError:
            raise NotFound(
                f"no generated script {record_id}", hint=f"see the folders in {self.root}", id=record_id
            ) from None

    def all(self) -> list[GeneratedRecord]:
        """Every readable record, newest first (damaged ones are skipped)."""
        entries = self.trust.entries()
        states = {e.approval.record_id: e.approval for e in entries}
        records = []
        for folder in sorted(self.root.glob("g-*")) if self.root.is_dir() else []:
            try:
                record = GeneratedRecord.model_validate_json(_read_regular(folder / "meta.json", _MAX_META))
            except (OSError, Tampered, ValidationError, ValueError):
                continue
            records.append(self._overlay(record, states.get(record.id)))
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def script_sha256(self, record_id: str) -> str:
        """The hash of the script's bytes as they are on disk now."""
        return hashlib.sha256(self.read_script(record_id)).hexdigest()

    # -- runs: appended, never rewritten ------------------------------------------------------------
    def record_run(self, record_id: str, run_id: str, status: str, attempt: int | None = None) -> None:
        """Append one run (and the attempt it ran) to the record's runs.jsonl."""
        line = json.dumps({"at": self.now(), "run_id": run_id, "status": status, "attempt": attempt})
        path = self.folder(record_id) / "runs.jsonl"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise Tampered(f"{path} cannot be opened safely ({exc.strerror})", path=str(path)) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Tampered(f"{path} is not a regular file", path=str(path))
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)

    def runs(self, record_id: str) -> list[dict[str, object]]:
        """The runs appended for a record, oldest first (unreadable lines are skipped)."""
        try:
            lines = _read_regular(self.folder(record_id) / "runs.jsonl", _MAX_RUNS).splitlines()
        except (OSError, Tampered):
            return []
        found = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("run_id"), str):
                found.append(entry)
        return found

    # -- trust: only these change it ----------------------------------------------------------------
    def transition(
        self,
        record_id: str,
        to: ReviewStatus,
        *,
        reviewer: str,
        note: str = "",
        grant_hosts: tuple[str, ...] = (),
        sha256: str | None = None,
        promoted_as: str | None = None,
        seal: ScaffoldSeal | None = None,
    ) -> GeneratedRecord:
        """Approve (with any egress granted), reject or mark promoted, chained onto the audit log.

        Under the lock, the current verified state is read again, so a decision is made against
        what is true now. Approval binds the bytes on disk now; ``sha256`` (a hash or a prefix of at
        least 8 digits, as ``review show`` printed it) refuses the approval if they are not the
        bytes the reviewer saw. Promotion keeps the approved bytes and adds the scaffold's seal.
        """
        with self.trust.locked():
            record = self.load_record(record_id)
            current = self.trust.current(record_id)
            allowed = {
                "approved": ("pending_review",),
                "rejected": ("pending_review", "approved"),
                "promoted": ("approved",),
            }
            if record.status not in allowed.get(to, ()):
                raise Conflict(
                    f"{record_id} is {record.status}; it cannot become {to}",
                    hint="see harness review show " + record_id,
                    id=record_id,
                )
            base = {"record_id": record_id, "reviewer": reviewer, "note": note, "at": self.now()}
            if to == "approved":
                digest = self.script_sha256(record_id)
                if sha256 is not None and not (len(sha256) >= 8 and digest.startswith(sha256.lower())):
                    raise NotReviewed(
                        f"{record_id}'s script is not the one reviewed (sha256 {digest[:16]}…, not {sha256[:16]})",
                        hint=f"look at it again: harness review show {record_id}",
                        record_id=record_id,
                    )
                approval = Approval(
                    status="approved", sha256=digest, granted_hosts=grant_hosts, raised_limits=True, **base
                )
            elif to == "rejected":
                approval = Approval(status="rejected", sha256=current.sha256 if current else None, **base)
            else:
                assert current is not None
                approval = current.model_copy(
                    update={
                        **base,
                        "status": "promoted",
                        "raised_limits": False,
                        "promoted_as": promoted_as,
                        "scaffold": seal,
                    }
                )
            self.trust.append(to, approval)
            self._write_meta(record, approval)
        return self._overlay(record, approval)

    def grant(self, record_id: str, hosts: tuple[str, ...], *, reviewer: str, replace: bool = False) -> GeneratedRecord:
        """Change the egress an approved script's reviewed bytes may use; chained like approval."""
        from harness.review.policy import assert_reviewed

        with self.trust.locked():
            record = self.load_record(record_id)
            if record.status != "approved":
                hint = (
                    f"a promoted scaffold's egress is sealed at promotion (scaffolds/{record.promoted_as}/"
                    "scaffold.toml); promote a newly approved script to change it"
                    if record.status == "promoted"
                    else f"approve it first: harness review approve {record_id} --allow-host HOST"
                )
                raise NotReviewed(
                    f"{record_id} is {record.status}; only an approved script gets egress",
                    hint=hint,
                    record_id=record_id,
                )
            approval, _ = assert_reviewed(self, record_id)
            granted = tuple(hosts) if replace else tuple(dict.fromkeys([*approval.granted_hosts, *hosts]))
            approval = approval.model_copy(update={"granted_hosts": granted, "reviewer": reviewer, "at": self.now()})
            self.trust.append("granted", approval)
            self._write_meta(record, approval)
        return self._overlay(record, approval)

    def audit_entries(self) -> list[dict[str, object]]:
        """The verified audit log as plain dicts (action plus the state it left), oldest first."""
        return [{"action": e.action, "seq": e.seq, **e.approval.model_dump(mode="json")} for e in self.trust.entries()]

    @staticmethod
    def now() -> str:
        """UTC time for records."""
        return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _trust_fields(approval: Approval | None) -> dict[str, object]:
    """The mirrored trust fields of a record in this state (none: never reviewed)."""
    if approval is None:
        return {
            "status": "pending_review",
            "reviewed_sha256": None,
            "reviewer": None,
            "review_note": "",
            "granted_hosts": [],
            "promoted_as": None,
        }
    return {
        "status": approval.status,
        "reviewed_sha256": approval.sha256,
        "reviewer": approval.reviewer,
        "review_note": approval.note,
        "granted_hosts": list(approval.granted_hosts) if approval.status != "rejected" else [],
        "promoted_as": approval.promoted_as,
    }


def _read_regular(path: Path, limit: int) -> bytes:
    """A file's bytes in one read; Tampered unless it is a regular file (no symlink, FIFO or device)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise Tampered(f"{path} cannot be opened safely ({exc.strerror})", path=str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Tampered(f"{path} is not a regular file", hint="only plain files are read", path=str(path))
        if info.st_size > limit:
            raise Tampered(f"{path} is larger than {limit} bytes", path=str(path))
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(limit + 1)[:limit]
    finally:
        os.close(fd)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def summarise(value: object, limit: int = 2000) -> str:
    """A JSON rendering shortened for the record."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
