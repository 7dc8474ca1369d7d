"""The rerun policy and the store against issue 9 item 4: forged meta.json, swapped bytes, FIFOs, the decision race."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import NotReviewed, Tampered
from harness.execution.limits import Limits
from harness.generation.scaffolds import load_library
from harness.records import RunResult
from harness.review.policy import assert_reviewed, authorize_rerun, scaffold_egress
from harness.review.promote import promote
from harness.review.store import GeneratedRecord, GeneratedStore

SCRIPT = 'import json\nfrom pathlib import Path\n\nPath("/output/a.json").write_text(json.dumps({"ok": True}))\n'
HOST = "api.example.com"


@pytest.fixture
def store(tmp_path: Path) -> GeneratedStore:
    return GeneratedStore(tmp_path / "generated", tmp_path / "data")


def pending(store: GeneratedStore, script: str = SCRIPT) -> GeneratedRecord:
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="write a file", strategy="generate_custom", model="m"
    )
    store.save(record, script)
    return record


def forge_meta(store: GeneratedStore, record_id: str) -> None:
    """What the attack writes by hand: meta.json saying approved, with the right hash and a grant."""
    meta_path = store.folder(record_id) / "meta.json"
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256((store.folder(record_id) / "script.py").read_bytes()).hexdigest()
    meta.update(status="approved", reviewed_sha256=digest, granted_hosts=[HOST], reviewer="mallory")
    meta_path.write_text(json.dumps(meta))


def test_a_hand_written_approved_meta_json_grants_nothing(store: GeneratedStore) -> None:
    record = pending(store)
    forge_meta(store, record.id)
    assert store.load_record(record.id).status == "pending_review"
    with pytest.raises(NotReviewed, match="unreviewed script gets no network"):
        authorize_rerun(store, record.id, Limits(), (HOST,))
    with pytest.raises(NotReviewed, match="only within the default limits"):
        authorize_rerun(store, record.id, Limits.build(memory="2g"), ())
    grant = authorize_rerun(store, record.id, Limits(), ())
    assert grant.hosts == () and not grant.raised_limits and grant.status == "pending_review"
    with pytest.raises(NotReviewed):
        assert_reviewed(store, record.id)


def test_save_cannot_set_trust_fields(store: GeneratedStore) -> None:
    record = pending(store)
    store.save(record.model_copy(update={"status": "approved", "granted_hosts": [HOST]}))
    meta = json.loads((store.folder(record.id) / "meta.json").read_text())
    assert meta["status"] == "pending_review" and meta["granted_hosts"] == []
    assert store.trust.current(record.id) is None


def test_an_approved_script_reruns_with_its_grant_and_raised_limits(store: GeneratedStore) -> None:
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada", grant_hosts=(HOST,))
    grant = authorize_rerun(store, record.id, Limits.build(memory="2g"), ())
    assert grant.hosts == (HOST,) and grant.raised_limits and grant.script == SCRIPT
    assert grant.sha256 == hashlib.sha256(SCRIPT.encode()).hexdigest()
    meta = json.loads((store.folder(record.id) / "meta.json").read_text())
    assert meta["status"] == "approved" and meta["granted_hosts"] == [HOST]  # mirrored for display


def test_a_script_swapped_after_approval_is_refused(store: GeneratedStore) -> None:
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada", grant_hosts=(HOST,))
    (store.folder(record.id) / "script.py").write_text(SCRIPT + "import os\n")
    with pytest.raises(Tampered, match="changed after it was approved"):
        authorize_rerun(store, record.id, Limits(), ())
    with pytest.raises(Tampered, match="changed after it was approved"):
        store.grant(record.id, ("other.example.com",), reviewer="ada")


def test_the_bytes_hashed_are_the_bytes_run(store: GeneratedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # A swap between a hash check and a second read cannot happen when there is one read.
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada")
    reads: list[bytes] = []
    real = store.read_script

    def counting(record_id: str) -> bytes:
        data = real(record_id)
        reads.append(data)
        (store.folder(record_id) / "script.py").write_text("import os\nos.system('id')\n")  # swapped right after
        return data

    monkeypatch.setattr(store, "read_script", counting)
    grant = authorize_rerun(store, record.id, Limits(), ())
    assert len(reads) == 1 and grant.script.encode() == reads[0] == SCRIPT.encode()


def test_a_fifo_as_script_is_refused_without_hanging(store: GeneratedStore) -> None:
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada")
    path = store.folder(record.id) / "script.py"
    path.unlink()
    os.mkfifo(path)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(outcome, authorize_rerun, store, record.id, Limits(), ()))
    worker.start()
    worker.join(10)
    if worker.is_alive():  # release the reader before failing, so the test run does not hang
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO script.py blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], Tampered) and "not a regular file" in str(outcome[0])


def test_a_symlinked_script_is_refused(store: GeneratedStore, tmp_path: Path) -> None:
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada")
    path = store.folder(record.id) / "script.py"
    (tmp_path / "elsewhere.py").write_text(SCRIPT)
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.py")
    with pytest.raises(Tampered, match="cannot be opened safely"):
        authorize_rerun(store, record.id, Limits(), ())


def _capture(into: list[BaseException], fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # handed to the test's thread, which asserts on it
        into.append(exc)


def _run(run_id: str, status: str = "succeeded") -> RunResult:
    return RunResult.model_validate(
        {
            "run_id": run_id,
            "status": status,
            "exit_code": 0 if status == "succeeded" else 1,
            "image": "harness-sandbox",
            "pooled": False,
            "duration_s": 1.0,
            "policy": {},
        }
    )


def test_a_rejection_during_a_run_stands(store: GeneratedStore) -> None:
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada", grant_hosts=(HOST,))
    stale = store.load_record(record.id)  # what a run holds while it runs
    grant = authorize_rerun(store, record.id, Limits(), ())
    store.transition(record.id, "rejected", reviewer="bob", note="posts the inputs")  # meanwhile
    store.record_run(grant.record_id, "r-1", "succeeded")  # the run ends: exec's record update
    store.save(stale)  # and a writer that still holds the record from before the decision
    now = store.load_record(record.id)
    assert now.status == "rejected" and now.granted_hosts == [] and now.runs == ["r-1"]
    assert json.loads((store.folder(record.id) / "meta.json").read_text())["status"] == "rejected"
    with pytest.raises(NotReviewed):
        authorize_rerun(store, record.id, Limits(), (HOST,))


def test_an_approval_during_a_generated_run_stands(store: GeneratedStore) -> None:
    from harness.generation.generate import Generation, record_run
    from harness.review.store import Attempt

    record = pending(store)
    held = store.load_record(record.id).model_copy(
        update={"attempts": [Attempt(number=1, stage="generate", prompt_summary="p", response="r")]}
    )
    generation = Generation(record=held)
    store.transition(record.id, "approved", reviewer="ada")  # while the pipeline's run goes on
    record_run(generation, store, _run("r-2", "failed"))
    store.save(generation.record)  # a repair saving its record afterwards
    now = store.load_record(record.id)
    assert now.status == "approved" and now.runs == ["r-2"] and now.attempts[0].run_status == "failed"
    assert [json.loads(line)["run_id"] for line in (store.folder(record.id) / "runs.jsonl").read_text().splitlines()]


def test_transitions_reread_the_current_state(store: GeneratedStore) -> None:
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada")
    store.transition(record.id, "rejected", reviewer="bob")
    with pytest.raises(NotReviewed):
        store.grant(record.id, (HOST,), reviewer="mallory")
    assert [e["action"] for e in store.audit_entries()] == ["approved", "rejected"]


def promoted(store: GeneratedStore, tmp_path: Path) -> Path:
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada", grant_hosts=(HOST,))
    (tmp_path / "lib").mkdir()
    return promote(store, record.id, "writer", library_root=tmp_path / "lib", reviewer="ada")


def test_a_promoted_scaffold_keeps_its_egress_as_sealed(store: GeneratedStore, tmp_path: Path) -> None:
    folder = promoted(store, tmp_path)
    assert scaffold_egress(store.trust, load_library(tmp_path / "lib").get("writer")) == ((HOST,), None)
    sealed = store.trust.sealed("writer")
    assert sealed is not None and sealed.scaffold is not None
    assert [name for name, _ in sealed.scaffold.files] == sorted(p.name for p in folder.iterdir())


def test_an_edited_egress_in_scaffold_toml_loses_the_grant(store: GeneratedStore, tmp_path: Path) -> None:
    folder = promoted(store, tmp_path)
    toml = folder / "scaffold.toml"
    toml.write_text(toml.read_text().replace(f'egress = ["{HOST}"]', f'egress = ["{HOST}", "evil.example.com"]'))
    hosts, why = scaffold_egress(store.trust, load_library(tmp_path / "lib").get("writer"))
    assert hosts == () and why is not None and "changed since its promotion (scaffold.toml)" in why


def test_an_added_file_or_an_unsealed_scaffold_gets_no_egress(store: GeneratedStore, tmp_path: Path) -> None:
    folder = promoted(store, tmp_path)
    (folder / "helper.py").write_text("print('hi')\n")
    hosts, why = scaffold_egress(store.trust, load_library(tmp_path / "lib").get("writer"))
    assert hosts == () and why is not None and "helper.py" in why
    # The same folder copied under a new name (a hand-written scaffold with egress): no promotion granted it.
    copy = tmp_path / "lib" / "writer2"
    copy.mkdir()
    for name in ("scaffold.toml", "program.py"):
        text = (folder / name).read_text()
        (copy / name).write_text(text.replace('name = "writer"', 'name = "writer2"'))
    hosts, why = scaffold_egress(store.trust, load_library(tmp_path / "lib").get("writer2"))
    assert hosts == () and why is not None and "no promotion on this machine" in why


def test_approval_binds_the_bytes_the_reviewer_saw(store: GeneratedStore) -> None:
    record = pending(store)
    seen = hashlib.sha256(SCRIPT.encode()).hexdigest()
    (store.folder(record.id) / "script.py").write_text(SCRIPT + "import os\n")  # swapped after `review show`
    with pytest.raises(NotReviewed, match="not the one reviewed"):
        store.transition(record.id, "approved", reviewer="ada", sha256=seen[:16])
    assert store.trust.current(record.id) is None
    (store.folder(record.id) / "script.py").write_text(SCRIPT)
    assert store.transition(record.id, "approved", reviewer="ada", sha256=seen[:16]).reviewed_sha256 == seen


def test_fifos_planted_as_meta_or_runs_never_block(store: GeneratedStore) -> None:
    planted = pending(store)
    other = pending(store)
    os.mkfifo(store.folder(other.id) / "runs.jsonl")
    (store.folder(planted.id) / "meta.json").unlink()
    os.mkfifo(store.folder(planted.id) / "meta.json")
    outcome: list[BaseException] = []
    listed: list[list[str]] = []
    worker = threading.Thread(target=lambda: _capture(outcome, lambda: listed.append([r.id for r in store.all()])))
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "a FIFO blocked the review queue"
    assert listed == [[other.id]] and not outcome  # the damaged record is skipped, the other one listed
    with pytest.raises(Tampered, match="not a regular file"):
        store.load_record(planted.id)
    with pytest.raises(Tampered, match=r"runs\.jsonl"):  # no reader: ENXIO, not a wait
        store.record_run(other.id, "r-3", "succeeded")


def test_concurrent_grants_each_start_from_the_last_decision(store: GeneratedStore) -> None:
    # Under the lock each grant re-reads the state, so none is lost and the chain stays whole.
    record = pending(store)
    store.transition(record.id, "approved", reviewer="ada")
    hosts = [f"h{i}.example.com" for i in range(8)]
    outcome: list[BaseException] = []
    workers = [
        threading.Thread(target=_capture, args=(outcome, lambda h=host: store.grant(record.id, (h,), reviewer="ada")))
        for host in hosts
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not outcome
    assert sorted(store.load_record(record.id).granted_hosts) == hosts
    assert [e["action"] for e in store.audit_entries()] == ["approved", *["granted"] * 8]
