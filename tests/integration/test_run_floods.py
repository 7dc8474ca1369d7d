"""Amplification through real containers: floods end with a bounded events log, and runs are retained sensibly.

The two floods are the review's (issue 9, item 9): 15 MB of bare newlines became 10.5 million
events and a 964 MB events.jsonl; 15 MB of ``[{},{},...]`` result lines took the host to 424 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.review.store import GeneratedRecord, GeneratedStore
from harness.runs import MAX_LOG_BYTES, MAX_LOG_EVENTS, RunStore
from harness.settings import Settings

NEWLINES = 'import sys\nsys.stdout.write("\\n" * 15_000_000)\nsys.stdout.flush()\n'
RESULTS = (
    "import sys\n"
    "line = '{\"v\":1,\"kind\":\"result\",\"data\":[' + ','.join(['{}'] * 21_000) + ']}\\n'\n"
    "for _ in range(15_000_000 // len(line)):\n"
    "    sys.stdout.write(line)\n"
    "sys.stdout.flush()\n"
)
LINES = "for i in range(200_000):\n    print(f'line {i}')\n"


def exec_script(tmp_path: Path, source: str, *args: str) -> tuple[dict[str, Any], Any, str, int]:
    """``harness exec`` in a child process: its JSON result, its own resource usage, its stderr, its peak RSS (KiB)."""
    script = tmp_path / "flood.py"
    script.write_text(source, encoding="utf-8")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "exec", str(script), "--json", "--timeout", "120", *args],
            stdout=stdout,
            stderr=stderr,
            cwd=tmp_path,
        )
        peak = _PeakRss(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU figures
        peak.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode in (0, 1), err.read_text()
    return json.loads(out.read_text()), usage, err.read_text(), peak.kib


class _PeakRss:
    """The child's own peak RSS (VmHWM of its memory after exec), sampled until it exits.

    Not ``ru_maxrss``: Linux carries the parent's high-water mark into a forked child across
    exec, so that figure is at least the size of this pytest process, which grows with the suite.
    """

    def __init__(self, pid: int) -> None:
        self.kib = 0
        self._path = Path(f"/proc/{pid}/status")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            try:
                text = self._path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.kib = max(self.kib, int(line.split()[1]))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def events_of(result: dict[str, Any]) -> tuple[Path, list[dict[str, Any]]]:
    log = Settings.from_env().runs_dir / result["run_id"] / "events.jsonl"
    return log, [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_a_flood_of_bare_newlines_is_one_event_not_millions(tmp_path: Path) -> None:
    t0 = time.monotonic()
    result, usage, _, _ = exec_script(tmp_path, NEWLINES)
    took = time.monotonic() - t0
    log, events = events_of(result)
    assert result["status"] == "succeeded"
    assert log.stat().st_size < 4096 and len(events) <= 4  # was 964 MB, 10.5 million lines
    marker = events[-1]
    assert marker["kind"] == "events_dropped" and marker["blank_lines"] >= 14_999_000
    cpu = usage.ru_utime + usage.ru_stime
    print(f"\nnewline flood: events.jsonl {log.stat().st_size} B, host CPU {cpu:.2f} s, wall {took:.2f} s")
    assert cpu < 20  # was 54 s (and more here) of host CPU


def test_a_flood_of_result_lines_stays_small_on_disk_and_in_memory(tmp_path: Path) -> None:
    result, _, _, peak_kib = exec_script(tmp_path, RESULTS)
    log, events = events_of(result)
    assert result["status"] == "succeeded"
    assert log.stat().st_size <= MAX_LOG_BYTES + 4096
    marker = events[-1]
    assert marker["kind"] == "events_dropped" and marker["count"] > 100 and marker["bytes"] > 6_000_000
    assert events[-2]["kind"] == "run_finished"
    peak_mb = peak_kib / 1024
    print(f"\nresult-line flood: events.jsonl {log.stat().st_size} B, host peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 200  # was 424 MB


def test_many_short_lines_stop_at_the_event_count(tmp_path: Path) -> None:
    result, _, _, _ = exec_script(tmp_path, LINES)
    _, events = events_of(result)
    assert result["status"] == "succeeded" and result["events_count"] >= 200_000
    assert len(events) <= MAX_LOG_EVENTS + 2
    assert [e["kind"] for e in events[-2:]] == ["run_finished", "events_dropped"]
    assert events[-1]["count"] + len(events) - 3 >= 200_000 - 1  # every line is written or counted
    outputs = [e["text"] for e in events if e["kind"] == "output"]
    assert outputs[:2] == ["line 0", "line 1"]  # the log keeps the beginning


def old(folder: Path, days: float = 100) -> None:
    stamp = time.time() - days * 86400
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (stamp, stamp), follow_symlinks=False)


def test_each_run_prunes_old_runs_but_not_what_a_review_points_at(tmp_path: Path) -> None:
    settings = Settings.from_env()
    store = RunStore(settings.runs_dir)
    for run_id in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
        folder = store.create(run_id)
        folder.write_text("result.json", '{"status": "succeeded"}')
        old(folder.path)
    generated = GeneratedStore.from_settings(settings)
    generated.save(
        GeneratedRecord(
            id="g-0000000000aa",
            created_at="2026-01-01T00:00:00+00:00",
            request="r",
            strategy="generate_custom",
            model="m",
        ),
        script="print('again')\n",
    )
    generated.record_run("g-0000000000aa", "aaaaaaaaaaaa", "succeeded")
    result, _, _, _ = exec_script(tmp_path, "print('hi')\n")
    left = {e.id for e in store.list()}
    assert left == {"aaaaaaaaaaaa", result["run_id"]}  # bbbb was 100 days old and nothing pointed at it
    # harness exec --generated works for a record whose runs were pruned, and loading one says so
    store.prune(older_than_s=86400, protected={})
    done = subprocess.run(
        [sys.executable, "-m", "harness", "exec", "--generated", "g-0000000000aa", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    record, _ = generated.load("g-0000000000aa")
    assert record.runs[0] == "aaaaaaaaaaaa" and len(record.runs) == 2
    shown = subprocess.run(
        [sys.executable, "-m", "harness", "runs", "show", "aaaaaaaaaaaa"], capture_output=True, text=True, cwd=tmp_path
    )
    assert shown.returncode == 2
    assert (
        shown.stderr.strip().splitlines() == [shown.stderr.strip().splitlines()[0]]
        and "run aaaaaaaaaaaa was pruned (retention: older than 1 days)" in shown.stderr
    )
