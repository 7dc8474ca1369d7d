"""The trust store resists the attacks of issue 9 item 4: forged, edited, truncated or recomputed logs."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from harness.errors import Tampered
from harness.review.trust import Approval, TrustStore


def approval(record_id: str = "g-000000000001", status: str = "approved", **extra: object) -> Approval:
    return Approval.model_validate(
        {"record_id": record_id, "status": status, "sha256": "a" * 64, "reviewer": "ada", "at": "now", **extra}
    )


def filled(tmp_path: Path) -> TrustStore:
    trust = TrustStore(tmp_path / "data")
    with trust.locked():
        trust.append("approved", approval(granted_hosts=("api.example.com",), raised_limits=True))
        trust.append("rejected", approval(status="rejected"))
    return trust


def test_the_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    trust = TrustStore(tmp_path / "data")
    key = trust.key()
    path = trust.dir / "key"
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(trust.dir.stat().st_mode) == 0o700
    assert TrustStore(tmp_path / "data").key() == key
    assert [p.name for p in trust.dir.iterdir()] == ["key"]  # no temporary file left behind


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    TrustStore(tmp_path / "data").key()
    (tmp_path / "data" / "review" / "key").chmod(mode)
    with pytest.raises(Tampered, match="mode 0600"):
        TrustStore(tmp_path / "data").key()


def test_a_key_that_is_a_symlink_or_someone_elses_is_refused(tmp_path: Path) -> None:
    mine = TrustStore(tmp_path / "mine")
    mine.key()
    theirs = TrustStore(tmp_path / "data")
    theirs.dir.mkdir(parents=True)
    (theirs.dir / "key").symlink_to(mine.dir / "key")
    with pytest.raises(Tampered, match="cannot be opened"):
        theirs.key()
    if os.getuid() == 0:  # only root can give a file away; the check itself runs for everyone
        (theirs.dir / "key").unlink()
        (theirs.dir / "key").write_bytes(os.urandom(32))
        (theirs.dir / "key").chmod(0o600)
        os.chown(theirs.dir / "key", 12345, -1)
        with pytest.raises(Tampered, match="owned by you"):
            TrustStore(tmp_path / "data").key()


def test_the_log_verifies_and_the_last_decision_stands(tmp_path: Path) -> None:
    trust = filled(tmp_path)
    assert [e.action for e in trust.entries()] == ["approved", "rejected"]
    current = trust.current("g-000000000001")
    assert current is not None and current.status == "rejected"
    assert trust.current("g-000000000002") is None


def test_an_edited_entry_is_detected(tmp_path: Path) -> None:
    trust = filled(tmp_path)
    lines = trust.log_path.read_text().splitlines()
    lines[1] = lines[1].replace('"status":"rejected"', '"status":"approved"')
    trust.log_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Tampered, match="line 2 does not verify"):
        trust.current("g-000000000001")


def test_a_truncated_log_is_detected(tmp_path: Path) -> None:
    # Dropping the rejection would bring the approval back; the head says the log had two entries.
    trust = filled(tmp_path)
    first = trust.log_path.read_text().splitlines()[0]
    trust.log_path.write_text(first + "\n")
    with pytest.raises(Tampered, match="truncated"):
        trust.current("g-000000000001")
    trust.log_path.unlink()
    with pytest.raises(Tampered, match="truncated"):
        trust.current("g-000000000001")


def test_a_plain_hash_chain_recomputed_by_the_attacker_does_not_verify(tmp_path: Path) -> None:
    # Whoever can write the file can recompute sha256(prev + content); without the key, not the HMAC.
    trust = filled(tmp_path)
    entries = [json.loads(line) for line in trust.log_path.read_text().splitlines()]
    entries[1]["approval"]["status"] = "approved"
    prev = entries[0]["mac"]
    for entry in entries[1:]:
        entry["prev"] = prev
        content = {k: v for k, v in entry.items() if k != "mac"}
        body = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        entry["mac"] = prev = hashlib.sha256(prev.encode() + b"\n" + body).hexdigest()
    trust.log_path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    head = json.loads(trust.head_path.read_text())
    head["last"] = prev
    trust.head_path.write_text(json.dumps(head))
    with pytest.raises(Tampered):
        trust.current("g-000000000001")


def test_a_forged_log_with_a_forged_head_does_not_verify(tmp_path: Path) -> None:
    forged = {
        "seq": 1,
        "action": "approved",
        "approval": approval(raised_limits=True).model_dump(mode="json"),
        "prev": "0" * 64,
        "mac": "f" * 64,
    }
    trust = TrustStore(tmp_path / "data")
    trust.dir.mkdir(parents=True)
    trust.log_path.write_text(json.dumps(forged) + "\n")
    trust.head_path.write_text(json.dumps({"count": 1, "last": "f" * 64, "mac": "e" * 64}))
    with pytest.raises(Tampered, match="head does not verify"):
        trust.current("g-000000000001")


def test_an_entry_copied_from_another_users_log_does_not_verify(tmp_path: Path) -> None:
    # Approvals do not travel by copying files: another key, another chain.
    theirs = filled(tmp_path / "theirs")
    mine = TrustStore(tmp_path / "mine" / "data")
    mine.dir.mkdir(parents=True)
    mine.key()
    for name in ("audit.log", "audit.head"):
        (mine.dir / name).write_bytes((theirs.dir / name).read_bytes())
    with pytest.raises(Tampered):
        mine.entries()


def test_readers_never_see_a_half_written_decision(tmp_path: Path) -> None:
    # A run checking its approval while a reviewer decides must not read "altered" in between.
    import threading

    writer_store, reader_store = TrustStore(tmp_path / "data"), TrustStore(tmp_path / "data")
    done = threading.Event()
    seen: list[BaseException] = []

    def read() -> None:
        while not done.is_set():
            try:
                reader_store.current("g-000000000001")
            except Tampered as exc:
                seen.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(40):
            with writer_store.locked():
                writer_store.append("granted", approval(granted_hosts=(f"h{n}.example.com",)))
    finally:
        done.set()
        reader.join(30)
    assert not seen
    assert len(writer_store.entries()) == 40


def test_append_outside_the_lock_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="needs the lock"):
        TrustStore(tmp_path / "data").append("approved", approval())
