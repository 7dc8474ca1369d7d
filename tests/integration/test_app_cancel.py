"""Cancelling a run on the real engine: the container is killed, the run ends `cancelled`, nothing is left."""

from __future__ import annotations

import threading
import time

import pytest

from harness.app.cancel import CancelToken
from harness.app.scripts import ScriptRun, exec_script
from harness.events import Event
from harness.execution.docker import DockerBackend
from harness.services import Services
from harness.settings import Settings

SLEEPER = "import time\nimport harness_runtime as hr\nhr.log('started')\ntime.sleep(60)\n"


@pytest.mark.parametrize("fixture", ["backend", "pooled"])
def test_a_cancelled_run_ends_cancelled_at_once(fixture: str, request: pytest.FixtureRequest) -> None:
    backend: DockerBackend = request.getfixturevalue(fixture)
    started = threading.Event()
    token = CancelToken()

    def sink(event: Event) -> None:
        if event.kind == "log":
            started.set()

    outcome = []
    with Services.from_settings(Settings.from_env(), backend=backend) as services:
        worker = threading.Thread(
            target=lambda: outcome.append(exec_script(services, ScriptRun(source=SLEEPER), sink=sink, cancel=token))
        )
        worker.start()
        assert started.wait(30), "the script never started"
        t0 = time.monotonic()
        token.set()
        worker.join(30)
    assert not worker.is_alive() and time.monotonic() - t0 < 10
    result = outcome[0].result
    assert result.status == "cancelled" and not result.ok, result.message
    assert backend.cancel(result.run_id) is False  # over: nothing left to cancel
