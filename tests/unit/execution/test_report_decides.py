"""When the supervisor's end report alone decides a run's status (docs/supervisor.md, "The end report")."""

from __future__ import annotations

import json

import pytest

from harness.execution.docker import _report_decides
from harness.execution.stream import RunReader


def _reader(*, report: dict[str, object] | None, stderr: bool = True, sent: bool = True) -> RunReader:
    r = RunReader(nonce="n0nce", stdout_cap=1 << 20, archive_cap=1 << 20)
    if stderr:
        r.feed(2, b'\n{"v": 1, "kind": "_harness_end", "nonce": "n0nce", "stream": "stderr"}\n')
    if report is not None:
        line = json.dumps({"v": 1, "kind": "_harness_end", "nonce": "n0nce", **report}).encode()
        r.feed(1, b"\n" + line + b"\n" + b"\0" * 1024)
        if sent:
            r.feed(1, b'{"v": 1, "kind": "_harness_sent", "nonce": "n0nce"}\n')
    return r


@pytest.mark.parametrize(
    ("report", "decides"),
    [
        ({"exit_code": 0, "settled": True, "oom_kills": 0}, True),
        ({"exit_code": 0, "settled": True, "oom_kills": None}, True),  # a zero exit never asks the engine
        ({"exit_code": 3, "settled": True, "oom_kills": 0}, True),
        ({"exit_code": 3, "settled": True, "oom_kills": 1}, True),  # decided: oom_killed, as the engine says
        ({"exit_code": 3, "settled": True, "oom_kills": None}, False),  # no OOM count: the engine knows
        ({"exit_code": 137, "settled": True, "oom_kills": 0}, False),  # SIGKILL: always the engine
        ({"exit_code": 0, "settled": False, "oom_kills": None}, False),  # something outlived the kill
        ({"exit_code": 256, "settled": True, "oom_kills": 0}, False),
        ({"exit_code": -1, "settled": True, "oom_kills": 0}, False),
        ({"settled": True, "oom_kills": 0}, False),
        # The supervisor's own stop (time limit, or the host's SIGUSR1): trusted when nothing was OOM-killed.
        ({"exit_code": 137, "settled": True, "oom_kills": 0, "interrupted": True}, True),
        ({"exit_code": 137, "settled": True, "oom_kills": 1, "interrupted": True}, False),
        ({"exit_code": 137, "settled": True, "oom_kills": None, "interrupted": True}, False),
        ({"exit_code": 137, "settled": True, "oom_kills": 0, "timed_out": True}, True),
    ],
)
def test_which_reports_decide(report: dict[str, object], decides: bool) -> None:
    r = _reader(report=report)
    assert _report_decides(r) is decides
    r.close()


def test_a_report_decides_only_once_stderr_and_the_outputs_are_complete() -> None:
    good = {"exit_code": 0, "settled": True, "oom_kills": 0}
    for r in (_reader(report=good, stderr=False), _reader(report=good, sent=False), _reader(report=None)):
        assert not _report_decides(r)
        r.close()
