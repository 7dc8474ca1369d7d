"""`harness serve --broker`: the server owns the broker connection; the CLI goes through it to the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from fleetkit import Fleet, Redis


def test_the_cli_through_a_server_with_a_broker_runs_on_a_worker(
    fleet: Fleet, redis_server: Redis, tmp_path: Path
) -> None:
    fleet.start("w1")
    data = tmp_path / "server-data"
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {"HARNESS_DATA_DIR": str(data)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "harness", "serve", "--broker", redis_server.url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        end = time.monotonic() + 60
        while "ready on " not in log.read_text(errors="replace"):
            assert server.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.1)  # another process's log line: nothing to wait on
        script = tmp_path / "job.py"
        script.write_text('print("ran on a worker")\n')
        cli = subprocess.run(
            [sys.executable, "-m", "harness", "exec", str(script), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert '"status": "succeeded"' in cli.stdout and "ran on a worker" in cli.stdout
        conn = redis.Redis.from_url(redis_server.url)
        streams = list(conn.scan_iter("harness:run:*:events"))
        assert len(streams) == 1
        first = conn.xrange(streams[0], count=1)[0][1]
        assert first[b"worker"] == b"harness@w1"
        conn.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
