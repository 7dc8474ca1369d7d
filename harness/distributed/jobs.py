"""The job that crosses the broker: what to run, under which limits and grants, signed with HMAC-SHA256.

The broker is not trusted with code: every job is signed over its canonical JSON with the key in
``HARNESS_JOB_KEY`` (shared by submitters and workers, never sent), and a worker runs nothing it
cannot verify. Everything else a run needs travels inside the signed job: the source bytes, the
inputs as a size-capped tar, the limits, the environment, the egress grant, the gate policy and
the deadline. Redis also carries what comes back (events, result, outputs) under the keys named
here; those are the submitter's to read, and it treats them as hostile input like any run output.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ConfigError, Tampered
from harness.execution.limits import Limits, MiB

__all__ = [
    "JOB_KEY_ENV",
    "MAX_INPUTS_BYTES",
    "MAX_OUTPUTS_BYTES",
    "Job",
    "SignedJob",
    "entry_mac",
    "entry_ok",
    "job_key",
    "keys",
    "sign",
    "verify",
]

JOB_KEY_ENV = "HARNESS_JOB_KEY"
MAX_INPUTS_BYTES = 32 * MiB  # inputs tar per job: Redis holds the whole message in memory, on every hop
MAX_OUTPUTS_BYTES = 64 * MiB  # outputs tar per run coming back; past it the outputs are partial
EVENTS_MAXLEN = 20_000  # a run's event stream is trimmed past this (the submitter reads it live)
RESULT_TTL_S = 3600  # what a run leaves in Redis expires this long after it ends
GatePolicyName = Literal["strict", "standard"]


class Job(BaseModel):
    """One run for a worker: everything it needs, nothing it would have to trust the broker for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    source_b64: str = Field(description="the script's exact bytes, base64")
    name: str = Field("main.py", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    argv: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    inputs_b64: str = Field("", description="inputs as a tar (top-level entries become /input/NAME), base64")
    limits: Limits
    egress: tuple[str, ...] = Field((), description="the grant: hosts the worker may fetch from for the script")
    agents: bool = Field(False, description="agent calls are answered (by the worker, with its own API key)")
    agent_tokens: int = Field(0, ge=0, description="the request's token budget (its limit)")
    budget_key: str | None = Field(
        None,
        pattern=r"^harness:budget:[0-9a-f]{32}$",
        description="Redis counter of the request's tokens used, shared by its phases and workers",
    )
    gate_policy: GatePolicyName = "standard"
    approval_sha256: str | None = Field(None, description="a reviewed script's approved hash: must match the bytes")
    submitted_at: float = Field(description="epoch seconds")
    deadline: float = Field(description="epoch seconds: a worker that takes the job later refuses it")

    @property
    def source(self) -> bytes:
        """The script's bytes."""
        return base64.b64decode(self.source_b64, validate=True)

    @property
    def inputs_tar(self) -> bytes:
        """The inputs tar, or b'' without inputs."""
        return base64.b64decode(self.inputs_b64, validate=True) if self.inputs_b64 else b""


class SignedJob(BaseModel):
    """A job as it travels: the canonical JSON text and its HMAC-SHA256 (hex)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: str
    mac: str


def job_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The shared job key from ``HARNESS_JOB_KEY``; ConfigError (no distributed runs) without one."""
    env = os.environ if environ is None else environ
    key = env.get(JOB_KEY_ENV, "")
    if len(key) < 16:
        raise ConfigError(
            f"distributed runs need {JOB_KEY_ENV} (at least 16 characters, the same on submitters and workers)",
            hint=f"set it, e.g. export {JOB_KEY_ENV}=$(python3 -c 'import secrets; print(secrets.token_hex(32))')",
        )
    return key.encode()


def canonical(job: Job) -> str:
    """The job's canonical JSON: sorted keys, no spaces, so both ends hash the same text."""
    return json.dumps(job.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sign(job: Job, key: bytes) -> SignedJob:
    """``job`` with its MAC over the canonical JSON."""
    body = canonical(job)
    return SignedJob(body=body, mac=hmac.new(key, body.encode(), hashlib.sha256).hexdigest())


def verify(signed: Mapping[str, object], key: bytes, *, now: float | None = None, grace: float = 0.0) -> Job:
    """The job inside ``signed`` if its MAC holds (constant-time compare) and it has not expired; else Tampered.

    ``grace`` extends the deadline: a redelivered job is taken after its first worker died, later
    than any first take may be.
    """
    body, mac = signed.get("body"), signed.get("mac")
    if not isinstance(body, str) or not isinstance(mac, str):
        raise Tampered("the job is not a signed harness job", hint="it was not sent by a harness submitter")
    want = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, mac):
        raise Tampered(
            "the job's signature does not match: it was altered or signed with another key",
            hint=f"submitters and workers must share {JOB_KEY_ENV}",
        )
    try:
        job = Job.model_validate_json(body)
    except ValidationError as exc:
        raise Tampered(f"the signed job is malformed: {exc.errors()[0]['msg']}", hint="versions differ?") from None
    if job.approval_sha256 is not None and not hmac.compare_digest(
        hashlib.sha256(job.source).hexdigest(), job.approval_sha256
    ):
        raise Tampered("the script's bytes are not the approved bytes", hint="the reviewed bytes must run")
    if (time.time() if now is None else now) > job.deadline + grace:
        raise Tampered(
            "the job expired before a worker took it",
            hint="start more workers, or allow a longer queue wait (HARNESS_QUEUE_WAIT_S)",
        )
    return job


def entry_mac(key: bytes, stream: str, fields: Mapping[str, str]) -> str:
    """The MAC a worker puts on an entry of a run's stream (bound to that stream), so Redis cannot forge one."""
    text = stream + "\n" + json.dumps({k: v for k, v in fields.items() if k != "mac"}, sort_keys=True)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def entry_ok(key: bytes, stream: str, fields: Mapping[str, str]) -> bool:
    """True when ``fields`` carry the MAC a worker holding ``key`` would have put on them (constant-time)."""
    return hmac.compare_digest(entry_mac(key, stream, fields), fields.get("mac", ""))


class _Keys:
    """The Redis key names of one run."""

    def __init__(self, run_id: str) -> None:
        base = f"harness:run:{run_id}"
        self.events = f"{base}:events"
        self.outputs = f"{base}:outputs"
        self.lease = f"{base}:lease"
        self.attempts = f"{base}:attempts"
        self.done = f"{base}:done"
        self.cancel = f"{base}:cancel"


def keys(run_id: str) -> _Keys:
    """The Redis keys of run ``run_id``."""
    return _Keys(run_id)
