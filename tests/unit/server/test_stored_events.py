"""A run the server no longer holds streams from its events log: numbered by line, resumable, then its end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.events import LogEvent, RunStarted
from harness.runs import RunStore
from harness.server.routes.runs import _stored_events


def _parse(frames: list[bytes]) -> list[tuple[str | None, str]]:
    out = []
    for frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.decode().strip().splitlines())
        out.append((fields.get("id"), fields["event"]))
    return out


def test_a_stored_run_replays_its_log_after_the_given_event(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    folder = store.create("0123456789ab")
    with folder.events() as log:
        log.write(RunStarted(seq=1, t=0.0, run_id="0123456789ab", image="i", pooled=True))
        log.write(LogEvent(seq=2, t=0.1, message="one"))
        log.write(LogEvent(seq=3, t=0.2, message="two"))
    state: Any = SimpleNamespace(services=SimpleNamespace(runs=store))
    view = {"run_id": "0123456789ab", "status": "finished"}
    frames = _stored_events(state, "0123456789ab", 0, view)
    assert _parse(frames) == [("1", "run_started"), ("2", "log"), ("3", "log"), (None, "end")]
    assert json.loads(frames[-1].decode().split("data: ", 1)[1]) == view
    assert _parse(_stored_events(state, "0123456789ab", 2, view)) == [("3", "log"), (None, "end")]
