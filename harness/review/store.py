"""The review queue: every generated script under ``generated/<id>/``, with how it came to be.

``meta.json`` records the request, analysis, strategy, model, prompt hash, every attempt
(with its findings and run status) and the tokens used. Trust fields (``status``) are set
here only; nothing an LLM returns can set them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from harness.errors import RunError, UserError

__all__ = ["Attempt", "GeneratedRecord", "GeneratedStore", "ReviewStatus"]

ReviewStatus = Literal["pending_review", "approved", "rejected", "promoted"]
_ID = re.compile(r"^g-[0-9a-f]{12}$")


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
    """``meta.json`` of a generated script."""

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
    """Reads and writes ``generated/<id>/`` folders."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_id(self) -> str:
        """A fresh id for a generated script."""
        return f"g-{uuid.uuid4().hex[:12]}"

    def folder(self, record_id: str) -> Path:
        """The folder of a generated script; UserError for a malformed id."""
        if not _ID.match(record_id):
            raise UserError(f"{record_id!r} is not a generated-script id", hint="ids look like g-0123456789ab")
        return self.root / record_id

    def save(
        self,
        record: GeneratedRecord,
        script: str | None = None,
        attempt_code: dict[int, str] | None = None,
        checks_json: str | None = None,
    ) -> Path:
        """Write meta.json (and the script, attempts and findings when given) atomically."""
        folder = self.folder(record.id)
        (folder / "attempts").mkdir(parents=True, exist_ok=True)
        if script is not None:
            _write(folder / "script.py", script)
        for number, code in (attempt_code or {}).items():
            _write(folder / "attempts" / f"{number:02d}.py", code)
        if checks_json is not None:
            _write(folder / "checks.json", checks_json)
        _write(folder / "meta.json", record.model_dump_json(indent=2))
        return folder

    def load(self, record_id: str) -> tuple[GeneratedRecord, str]:
        """The record and its script; UserError when unknown or unreadable."""
        folder = self.folder(record_id)
        try:
            record = GeneratedRecord.model_validate_json((folder / "meta.json").read_text(encoding="utf-8"))
            script = (folder / "script.py").read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"no generated script {record_id}", hint=f"see the folders in {self.root}") from None
        except (ValidationError, ValueError) as exc:
            raise UserError(f"generated script {record_id} has a damaged meta.json", hint=str(exc)[:200]) from None
        return record, script

    def all(self) -> list[GeneratedRecord]:
        """Every readable record, newest first (damaged ones are skipped)."""
        records = []
        for folder in sorted(self.root.glob("g-*")) if self.root.is_dir() else []:
            try:
                records.append(GeneratedRecord.model_validate_json((folder / "meta.json").read_text(encoding="utf-8")))
            except (OSError, ValidationError, ValueError):
                continue
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def script_sha256(self, record_id: str) -> str:
        """The hash of the script's bytes as they are on disk now."""
        return hashlib.sha256((self.folder(record_id) / "script.py").read_bytes()).hexdigest()

    def transition(
        self, record_id: str, to: ReviewStatus, *, reviewer: str, note: str = "", grant_hosts: tuple[str, ...] = ()
    ) -> GeneratedRecord:
        """Approve (with any egress granted), reject or mark promoted, with the audit log."""
        record, _ = self.load(record_id)
        allowed = {
            "approved": ("pending_review",),
            "rejected": ("pending_review", "approved"),
            "promoted": ("approved",),
        }
        if record.status not in allowed.get(to, ()):
            raise UserError(
                f"{record_id} is {record.status}; it cannot become {to}",
                hint="see harness review show " + record_id,
            )
        update: dict[str, object] = {"status": to, "reviewer": reviewer, "review_note": note}
        if to == "approved":
            update["reviewed_sha256"] = self.script_sha256(record_id)
            update["granted_hosts"] = list(grant_hosts)
        elif to == "rejected":
            update["granted_hosts"] = []
        record = record.model_copy(update=update)
        self.save(record)
        extra = {"granted_hosts": list(grant_hosts)} if grant_hosts else {}
        self.audit(record_id, to, reviewer=reviewer, note=note, sha256=record.reviewed_sha256, **extra)
        return record

    def grant(self, record_id: str, hosts: tuple[str, ...], *, reviewer: str, replace: bool = False) -> GeneratedRecord:
        """Change the egress an approved script's reviewed bytes may use; audited like approval."""
        record, _ = self.load(record_id)
        if record.status != "approved":
            hint = (
                f"edit the egress of scaffolds/{record.promoted_as}/scaffold.toml, a reviewed file"
                if record.status == "promoted"
                else f"approve it first: harness review approve {record_id} --allow-host HOST"
            )
            raise UserError(f"{record_id} is {record.status}; only an approved script gets egress", hint=hint)
        if self.script_sha256(record_id) != record.reviewed_sha256:
            raise RunError(
                f"{record_id}'s script changed after it was approved", hint="the reviewed bytes must be granted"
            )
        granted = list(hosts) if replace else list(dict.fromkeys([*record.granted_hosts, *hosts]))
        record = record.model_copy(update={"granted_hosts": granted})
        self.save(record)
        self.audit(record_id, "granted", reviewer=reviewer, granted_hosts=granted, sha256=record.reviewed_sha256)
        return record

    def audit(self, record_id: str, action: str, **details: object) -> None:
        """Append one line to the audit log (never rewritten)."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": self.now(), "id": record_id, "action": action, **details}, default=str)
        with (self.root / "audit.log").open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    @staticmethod
    def now() -> str:
        """UTC time for records."""
        return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def summarise(value: object, limit: int = 2000) -> str:
    """A JSON rendering shortened for the record."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
