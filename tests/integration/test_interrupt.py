"""Stopping a run early keeps what it wrote: Ctrl-C (``interrupt``) and the output cap, on a real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.events import Event
from harness.execution.docker import DockerBackend
from harness.execution.limits import Limits
from harness.records import RunSpec

WRITE_THEN_SLEEP = (
    "from pathlib import Path\n"
    "import time\n"
    "Path('/output/part.txt').write_text('half done\\n')\n"
    "print('written', flush=True)\n"
    "time.sleep(120)\n"
)


def test_an_interrupted_run_keeps_what_it_had_written(backend: DockerBackend, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = RunSpec(script=WRITE_THEN_SLEEP, output_dir=out, limits=Limits.build(timeout_s=60))
    written = threading.Event()

    def on_event(event: Event) -> None:
        if event.kind == "output" and "written" in event.model_dump_json():
            written.set()

    asked: list[bool] = []

    def interrupt() -> None:
        if written.wait(60):
            asked.append(backend.interrupt(spec.run_id))

    helper = threading.Thread(target=interrupt)
    helper.start()
    result = backend.run(spec, on_event=on_event)
    helper.join()
    assert asked == [True]
    assert result.status == "interrupted", result.message
    assert "kept (partial)" in result.message
    assert (out / "part.txt").read_text() == "half done\n"
    assert result.outputs_partial
    assert result.duration_s < 30
    assert not backend.interrupt(spec.run_id)  # over: nothing left to interrupt


def test_a_run_stopped_at_the_output_cap_keeps_what_it_had_written(backend: DockerBackend, tmp_path: Path) -> None:
    script = (
        "from pathlib import Path\n"
        "import sys\n"
        "Path('/output/part.txt').write_text('before the flood\\n')\n"
        "line = 'x' * 1023 + '\\n'\n"
        "while True:\n"
        "    sys.stdout.write(line)\n"
    )
    out = tmp_path / "out"
    result = backend.run(RunSpec(script=script, output_dir=out, limits=Limits.build(timeout_s=60, stdout_cap="4m")))
    assert result.status == "output_limit", result.message
    assert "kept (partial)" in result.message
    assert (out / "part.txt").read_text() == "before the flood\n"
    assert result.outputs_partial
    assert result.stdout_bytes <= 4 * 1024 * 1024 + 256 * 1024


def _events_with(runs: Path, needle: str) -> Path | None:
    for log in runs.glob("*/events.jsonl"):
        if needle in log.read_text(encoding="utf-8", errors="replace"):
            return log
    return None


SCAFFOLD = """name = "slow_writer"
title = "Write a part, then wait"
description = "Writes part.txt to the output folder, then waits a long time."
workflow_type = "automation"
keywords = ["slow", "part", "wait"]
expected_runtime_s = 2.0

[[outputs]]
path = "part.txt"
description = "the part written before the wait"

[[examples]]
request = "write a part slowly"
"""


@pytest.mark.parametrize("command", ["exec", "run"])
def test_ctrl_c_keeps_the_outputs_and_exits_130(
    command: str, tmp_path: Path, leftovers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first SIGINT to a real ``harness exec``/``run`` stops the script; what it wrote is kept, partial."""
    out = tmp_path / "out"
    if command == "exec":
        script = tmp_path / "slow.py"
        script.write_text(WRITE_THEN_SLEEP)
        args = ["exec", str(script)]
    else:
        library = tmp_path / "library" / "slow_writer"
        library.mkdir(parents=True)
        (library / "scaffold.toml").write_text(SCAFFOLD)
        (library / "template.py.j2").write_text(WRITE_THEN_SLEEP)
        monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library.parent))
        args = ["run", "write a part slowly", "--template", "slow_writer"]
    runs = Path(os.environ["HARNESS_DATA_DIR"]) / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args, "--local", "--output", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background jobs inherit SIGINT as ignored; a user's terminal delivers it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 90
        # The script's line is in the run's events log (written as events arrive) once the file exists.
        while (log := _events_with(runs, "written")) is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log is not None, proc.stderr.read() if proc.poll() is not None and proc.stderr else "no event"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    shown = json.loads(stdout)
    result = shown if command == "exec" else shown["execution_result"]
    assert result["status"] == "interrupted" and result["outputs_partial"] is True, result["message"]
    assert "kept (partial)" in result["message"]
    assert (out / "part.txt").read_text() == "half done\n"
    assert "stopping the script and collecting what it wrote" in stderr
    assert json.loads((log.parent / "result.json").read_text())["status"] == "interrupted"
    if command == "run":
        report = json.loads((log.parent / "report.json").read_text())
        assert report["execution_result"]["status"] == "interrupted"
        assert report["provenance"]["template"] == "slow_writer"
    assert took < 30
    assert leftovers() == []
