"""What a submitter refuses before anything reaches the broker: no job key, inputs over the cap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.distributed import submit
from harness.errors import InputError


def test_no_job_key_is_one_error_line_and_nothing_is_sent(cli: Any, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text('print("hi")\n')
    # Port 9 (discard) on loopback: were anything sent, it would fail differently.
    code, _, err = cli("--broker", "redis://127.0.0.1:9/0", "exec", str(script))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: distributed runs need HARNESS_JOB_KEY"), err


def test_a_worker_without_a_job_key_does_not_start(cli: Any) -> None:
    code, _, err = cli("worker", "--broker", "redis://127.0.0.1:9/0")
    assert code == 2 and "HARNESS_JOB_KEY" in err


def test_inputs_over_the_cap_are_refused_naming_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submit, "MAX_INPUTS_BYTES", 2 * 2**20)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(b"x" * (3 * 2**20))
    with pytest.raises(InputError, match="over the 2 MiB a distributed run may carry"):
        submit._inputs_tar((data,))
    small = tmp_path / "small.txt"
    small.write_text("ok")
    assert len(submit._inputs_tar((small,))) > 0


def test_two_inputs_of_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.csv").write_text("1")
    (tmp_path / "b" / "x.csv").write_text("2")
    with pytest.raises(InputError, match=r"both called 'x\.csv'"):
        submit._inputs_tar((tmp_path / "a" / "x.csv", tmp_path / "b" / "x.csv"))
