"""The signed job: canonical, authenticated over every field, refused when altered, expired or keyless."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from harness.distributed.jobs import Job, canonical, job_key, sign, verify
from harness.errors import ConfigError, Tampered
from harness.execution.limits import Limits

KEY = b"k" * 32


def _job(**kw: object) -> Job:
    now = time.time()
    fields: dict[str, object] = {
        "run_id": "abc123",
        "source_b64": base64.b64encode(b'print("hi")\n').decode(),
        "limits": Limits(),
        "egress": ("example.org",),
        "submitted_at": now,
        "deadline": now + 60,
    }
    fields.update(kw)
    return Job.model_validate(fields)


def test_a_signed_job_verifies_and_round_trips() -> None:
    job = _job(env={"A": "1"})
    assert verify(sign(job, KEY).model_dump(), KEY) == job


def test_the_canonical_form_does_not_depend_on_field_order() -> None:
    job = _job()
    reordered = Job.model_validate(dict(reversed(list(job.model_dump().items()))))
    assert canonical(reordered) == canonical(job)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(source_b64=base64.b64encode(b"import os\n").decode()),
        lambda d: d.update(egress=["example.org", "evil.example"]),
        lambda d: d["limits"].update(timeout_s=3600),
        lambda d: d.update(env={"A": "2"}),
        lambda d: d.update(deadline=d["deadline"] + 3600),
    ],
)
def test_changing_any_field_after_signing_is_refused(change: object) -> None:
    signed = sign(_job(env={"A": "1"}), KEY)
    body = json.loads(signed.body)
    change(body)  # type: ignore[operator]
    forged = {"body": json.dumps(body, sort_keys=True, separators=(",", ":")), "mac": signed.mac}
    with pytest.raises(Tampered, match="signature does not match"):
        verify(forged, KEY)


def test_another_key_or_no_mac_is_refused() -> None:
    signed = sign(_job(), KEY).model_dump()
    with pytest.raises(Tampered, match="signature does not match"):
        verify(signed, b"x" * 32)
    with pytest.raises(Tampered, match="not a signed harness job"):
        verify({"body": signed["body"]}, KEY)


def test_an_expired_job_is_refused() -> None:
    job = _job()
    with pytest.raises(Tampered, match="expired"):
        verify(sign(job, KEY).model_dump(), KEY, now=job.deadline + 1)


def test_an_approval_must_cover_the_exact_bytes() -> None:
    approved = hashlib.sha256(b'print("hi")\n').hexdigest()
    assert verify(sign(_job(approval_sha256=approved), KEY).model_dump(), KEY).approval_sha256 == approved
    with pytest.raises(Tampered, match="not the approved bytes"):
        verify(sign(_job(approval_sha256="0" * 64), KEY).model_dump(), KEY)


def test_no_key_means_no_distributed_runs() -> None:
    with pytest.raises(ConfigError, match="HARNESS_JOB_KEY"):
        job_key({})
    with pytest.raises(ConfigError, match="at least 16"):
        job_key({"HARNESS_JOB_KEY": "short"})
    assert job_key({"HARNESS_JOB_KEY": "x" * 16}) == b"x" * 16


def test_a_redelivered_job_gets_a_grace_past_its_deadline() -> None:
    job = _job()
    signed = sign(job, KEY).model_dump()
    assert verify(signed, KEY, now=job.deadline + 100, grace=200) == job
    with pytest.raises(Tampered, match="expired"):
        verify(signed, KEY, now=job.deadline + 300, grace=200)
