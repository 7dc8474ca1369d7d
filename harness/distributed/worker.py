"""``harness worker``: a Celery worker that runs authenticated jobs on its own DockerBackend.

The pool is Celery's ``threads`` pool, on purpose. A run is I/O for this process (the engine
does the work), one DockerBackend with its warm pool is shared by every thread, and deadlines
are enforced by harness's in-container supervisor, not by Celery (whose time limits need
prefork or gevent). A SIGKILLed worker loses all its threads at once, which is what the lease
below is built for.

Delivery: JSON only, ``acks_late`` and a prefetch of one, so a job is acknowledged only once its
result is posted. On Redis an unacknowledged job comes back after the transport's visibility
timeout; it is set from the longest run a worker accepts (``max_run_s``) plus ``REDELIVERY_MARGIN_S``,
and every worker sweeps for such jobs each second, so a job whose worker died is redelivered
within ``max_run_s + REDELIVERY_MARGIN_S + 1`` seconds. A per-run lease in Redis (SET NX with
an expiry, renewed by a heartbeat) and a ``done`` marker make sure a redelivered job never
completes twice: a second copy waits for a live holder's lease to end, and a finished run's
copy is dropped. Each take-over is a new attempt, counted in Redis and shown to the submitter.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.distributed.jobs import (
    EVENTS_MAXLEN,
    MAX_OUTPUTS_BYTES,
    RESULT_TTL_S,
    Job,
    entry_mac,
    job_key,
    keys,
    verify,
)
from harness.errors import HarnessError, Tampered

if TYPE_CHECKING:
    from celery import Celery

    from harness.events import Event
    from harness.services import Services

__all__ = [
    "QUEUE",
    "REDELIVERY_MARGIN_S",
    "TASK",
    "WorkerConfig",
    "celery_app",
    "list_workers",
    "start_worker",
]

log = logging.getLogger("harness.worker")

QUEUE = "harness"
TASK = "harness.run"
REDELIVERY_MARGIN_S = 10.0  # past a run's deadline: the supervisor's grace, collection and the result post
LEASE_TTL_S = 6.0  # a dead holder's lease ends this long after its last heartbeat
CANCEL_POLL_S = 0.5  # how often a running job looks for its submitter's cancel
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def celery_app(broker_url: str, *, visibility_timeout: float | None = None) -> Celery:
    """The Celery app both ends use, with its configuration in one place."""
    from celery import Celery

    app = Celery("harness", broker=broker_url, set_as_current=False)
    transport: dict[str, Any] = {"socket_connect_timeout": 5, "socket_timeout": 10, "retry_on_timeout": False}
    if visibility_timeout is not None:
        # Workers sweep for unacknowledged jobs each second, so the bound is the timeout itself.
        transport.update(visibility_timeout=visibility_timeout, unacked_restore_interval=1, unacked_restore_throttle=1)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,  # results come back through the run's own Redis keys
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        # A worker waits for its broker to come back; a submitter fails fast and says so.
        broker_connection_max_retries=None if visibility_timeout is not None else 3,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app


class WorkerConfig:
    """A worker's settings: broker, concurrency, the longest run it takes, metrics port, gate floor."""

    def __init__(
        self,
        broker_url: str,
        *,
        concurrency: int | None = None,
        max_run_s: float = 3600.0,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        hostname: str | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.concurrency = concurrency or os.cpu_count() or 1
        self.max_run_s = max_run_s
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        name = hostname or f"{socket.gethostname()}-{os.getpid()}"
        # Celery names a worker user@host; the same name is used in Redis and shown by `harness workers`.
        self.hostname = name if "@" in name else f"harness@{name}"

    @property
    def visibility_timeout(self) -> float:
        """How long a taken job may stay unacknowledged before another worker gets it."""
        return self.max_run_s + REDELIVERY_MARGIN_S


class _Metrics:
    """The worker's Prometheus metrics, in their own registry (units in the names)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry(auto_describe=True)
        self.queue_wait = Histogram(
            "harness_worker_queue_wait_seconds",
            "from a job's submission to its start here",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 300),
            registry=r,
        )
        self.run_duration = Histogram(
            "harness_worker_run_duration_seconds",
            "a run's duration here",
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=r,
        )
        self.runs = Counter("harness_worker_runs", "runs ended here, by status", ("status",), registry=r)
        self.failures = Counter(
            "harness_worker_failures", "jobs refused or failed here, by reason", ("reason",), registry=r
        )
        self.running = Gauge("harness_worker_running", "runs in progress", registry=r)
        self.pool_ready = Gauge("harness_worker_pool_ready", "pre-started containers ready", registry=r)


class _Runner:
    """What one worker process holds: its services (the backend and warm pool), Redis, the key, the counters."""

    def __init__(self, config: WorkerConfig) -> None:
        import redis

        from harness.services import Services
        from harness.settings import Settings

        self.config = config
        self.key = job_key()
        self.redis = redis.Redis.from_url(config.broker_url, socket_timeout=10, socket_connect_timeout=5)
        self.settings = Settings.from_env()
        self.services: Services = Services(self.settings)
        self.metrics = _Metrics()
        self.token = f"{config.hostname}:{os.getpid()}"
        self.stats_key = f"harness:worker:{config.hostname}"
        self._lock = threading.Lock()
        self.done = 0
        self.failed = 0

    def start(self) -> None:
        """Open the backend (connect, sweep, fill the warm pool) and publish this worker's row."""
        backend = self.services.backend
        state = getattr(backend, "pool_state", None)
        if callable(state):
            self.metrics.pool_ready.set_function(lambda: float(state()[0]))
        if self.settings.anthropic_api_key is not None:
            # This worker answers agent calls: load the SDK now, not inside the first run's time limit.
            import anthropic  # noqa: F401
        name = "docker" if type(backend).__name__ == "DockerBackend" else type(backend).__name__
        self.engine = f"{name} ({self.settings.runtime or 'runc'})"
        self._publish()

    def close(self) -> None:
        """Remove every container (the backend's close) and this worker's row."""
        try:
            self.redis.delete(self.stats_key)
        except Exception as exc:  # noqa: BLE001 - the broker may be gone at shutdown
            log.warning("could not remove this worker's row: %s", exc)
        self.services.close()

    def _publish(self) -> None:
        row = {"done": self.done, "failed": self.failed, "engine": getattr(self, "engine", ""), "pid": os.getpid()}
        self.redis.set(self.stats_key, json.dumps(row), ex=24 * 3600)

    # -- one job ------------------------------------------------------------------------------
    def handle(self, signed: dict[str, Any]) -> None:
        """Verify, lease, gate and run one job, posting its events and result; never raises for a job's fault."""
        claimed = _claimed_run_id(signed)
        # A job some worker already took is a redelivery: it may come up to a lost attempt's
        # whole window after the deadline for a first take (the submitter waits as long).
        taken = claimed is not None and bool(self.redis.exists(keys(claimed).attempts))
        grace = 2 * (self.config.max_run_s + REDELIVERY_MARGIN_S) if taken else 0.0
        try:
            job = verify(signed, self.key, grace=grace)
        except Tampered as exc:
            log.warning("refused job %s: %s", claimed or "(no run id)", exc.message)
            self.metrics.failures.labels("unauthenticated").inc()
            if claimed:
                self._refuse(claimed, "Tampered", exc.message, exc.hint)
            return
        k = keys(job.run_id)
        if self.redis.exists(k.done):
            return  # a copy of a run that completed: it completes once
        if not self._take_lease(job):
            return
        heartbeat = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.run_id, heartbeat), daemon=True)
        beat.start()
        try:
            self._run(job)
        finally:
            heartbeat.set()
            beat.join()
            self.redis.eval(_RELEASE, 1, k.lease, self.token)

    def _take_lease(self, job: Job) -> bool:
        """Hold the run's lease; a live holder's copy waits for it to end, a finished run's copy is dropped."""
        k = keys(job.run_id)
        ttl_ms = int(LEASE_TTL_S * 1000)
        while not self.redis.set(k.lease, self.token, nx=True, px=ttl_ms):
            if self.redis.exists(k.done):
                return False
            if time.time() > job.deadline + 2 * (self.config.max_run_s + REDELIVERY_MARGIN_S):
                return False  # the submitter gave up long ago
            time.sleep(0.5)  # polling a key another host holds: there is nothing here to wait on
        return not self.redis.exists(k.done)

    def _heartbeat(self, run_id: str, stop: threading.Event) -> None:
        """Renew the lease, and pass on a cancel the submitter asked for (each checked every half second)."""
        k = keys(run_id)
        renewed = time.monotonic()
        cancelled = False
        while not stop.wait(CANCEL_POLL_S):
            try:
                if not cancelled and self.redis.exists(k.cancel):
                    cancelled = self.services.backend.cancel(run_id)
                if time.monotonic() - renewed >= LEASE_TTL_S / 3:
                    self.redis.pexpire(k.lease, int(LEASE_TTL_S * 1000))
                    renewed = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - the run goes on; a lost lease only allows a redelivery
                log.warning("lease heartbeat failed: %s", exc)

    def _run(self, job: Job) -> None:
        from harness.checks import vet
        from harness.execution.docker import DockerBackend, sweep

        k = keys(job.run_id)
        attempt = int(self.redis.incr(k.attempts))
        self.redis.expire(k.attempts, RESULT_TTL_S)
        self._post(k.events, {"t": "attempt", "n": attempt, "worker": self.config.hostname})
        # Expires even if no attempt ever finishes (every worker lost); the result shortens it.
        self.redis.expire(k.events, int(RESULT_TTL_S + self.config.max_run_s))
        backend = self.services.backend
        if attempt > 1 and isinstance(backend, DockerBackend):
            # The previous attempt's worker died: its containers (and warm pool) have no owner now.
            removed = sweep(backend.client)
            if removed:
                log.info("attempt %d of %s: removed %d containers of a dead worker", attempt, job.run_id, len(removed))
        self.metrics.queue_wait.observe(max(0.0, time.time() - job.submitted_at))
        if job.limits.timeout_s > self.config.max_run_s:
            self._fail(
                job,
                "limit",
                "ConfigError",
                f"the run's time limit {job.limits.timeout_s:g}s is over this worker's {self.config.max_run_s:g}s",
                "lower the run's time limit, or start workers that take longer runs (HARNESS_WORKER_MAX_RUN_S)",
            )
            return
        try:
            source = job.source.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(job, "gate", "GateRefused", "the script is not UTF-8 text", "")
            return
        vetted = vet(source, job.gate_policy)
        if not vetted.passed:
            first = next((f for f in vetted.report.findings if f.severity == "error"), None)
            where = f": {first.code} line {first.line}: {first.message}" if first else ""
            self._fail(
                job,
                "gate",
                "GateRefused",
                f"the worker's {job.gate_policy} gate refused the script{where}",
                "see harness check",
            )
            return
        self.metrics.running.inc()
        started = time.monotonic()
        import redis

        ran = True
        try:
            if self.redis.exists(k.cancel):
                result_json, outputs = _not_run(job, "cancelled before it started; nothing ran", "cancelled"), b""
            else:
                result_json, outputs = self._execute(job, source)
        except redis.RedisError:
            self.metrics.running.dec()
            raise  # the broker is gone: the submitter has heard so already; nothing can be posted
        except Exception as exc:  # noqa: BLE001 - an engine failure ends the run as error, with its reason
            reason = exc.one_line() if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
            log.warning("run %s: the engine failed: %s", job.run_id, reason)
            self.metrics.failures.labels("engine").inc()
            result_json, outputs = (
                _not_run(job, f"the engine of worker {self.config.hostname} failed: {reason}"),
                b"",
            )
            ran = False
        self.metrics.running.dec()
        self.metrics.run_duration.observe(time.monotonic() - started)
        status = json.loads(result_json).get("status", "error")
        self.metrics.runs.labels(status).inc()
        pipe = self.redis.pipeline()
        pipe.set(k.outputs, outputs, ex=RESULT_TTL_S)
        pipe.set(k.done, self.token, nx=True, ex=RESULT_TTL_S)
        digest = hashlib.sha256(outputs).hexdigest()
        entry = self._signed(k.events, {"t": "result", "data": result_json, "outputs_sha256": digest})
        pipe.xadd(k.events, entry, maxlen=EVENTS_MAXLEN, approximate=True)
        pipe.expire(k.events, RESULT_TTL_S)
        pipe.execute()
        with self._lock:
            if ran:
                self.done += 1
            else:
                self.failed += 1
        self._publish()

    def _execute(self, job: Job, source: str) -> tuple[str, bytes]:
        """Run ``job`` on the backend with its inputs unpacked here; the result JSON and the outputs tar."""
        from harness.execution.egress import EgressPolicy, FetchBroker
        from harness.records import RunSpec

        k = keys(job.run_id)
        work = Path(tempfile.mkdtemp(prefix=f"harness-job-{job.run_id}-"))
        try:
            inputs = _unpack_inputs(job.inputs_tar, work / "in")
            spec = RunSpec(
                script=source,
                name=job.name,
                argv=job.argv,
                env=job.env,
                inputs=inputs,
                output_dir=work / "out",
                output_mode="new",
                limits=None if job.limits == self.settings.limits else job.limits,
                egress=job.egress,
                run_id=job.run_id,
            )
            fetcher = FetchBroker(EgressPolicy(allow=job.egress)) if job.egress else None
            agent = self._agent(job)

            def on_event(event: Event) -> None:
                self._post(k.events, {"t": "event", "data": event.model_dump_json()})

            result = self.services.backend.run(spec, on_event=on_event, on_agent=agent, on_fetch=fetcher)
            outputs = _pack_outputs(work / "out", MAX_OUTPUTS_BYTES)
            if agent is not None:
                # What this run's agent calls used, for the submitter's own budget and report.
                self._post(k.events, {"t": "usage", "data": agent.llm.budget.used.model_dump_json()})
            return result.model_dump_json(exclude={"output_dir"}), outputs
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _agent(self, job: Job) -> Any:
        """Agent calls are answered here, with this worker's API key, within the request's shared token budget."""
        if not job.agents or self.settings.anthropic_api_key is None:
            return None
        from harness.generation.agents import AgentBroker

        budget = _shared_budget(job.agent_tokens, self.redis, job.budget_key)
        return AgentBroker(self.services.llm_for(budget), self.services.roles)

    def _signed(self, stream: str, fields: dict[str, Any]) -> dict[Any, Any]:
        entry = {k: str(v) for k, v in fields.items()}
        return {**entry, "mac": entry_mac(self.key, stream, entry)}

    def _post(self, stream: str, fields: dict[str, Any]) -> None:
        # Signed, so whoever can write to Redis cannot make a submitter show or keep forged events.
        self.redis.xadd(stream, self._signed(stream, fields), maxlen=EVENTS_MAXLEN, approximate=True)

    def _refuse(self, run_id: str, kind: str, message: str, hint: str) -> None:
        k = keys(run_id)
        self._post(k.events, {"t": "refused", "kind": kind, "message": message, "hint": hint})
        self.redis.expire(k.events, RESULT_TTL_S)
        with self._lock:
            self.failed += 1
        self._publish()

    def _fail(self, job: Job, reason: str, kind: str, message: str, hint: str) -> None:
        log.warning("job %s refused (%s): %s", job.run_id, reason, message)
        self.metrics.failures.labels(reason).inc()
        self.redis.set(keys(job.run_id).done, self.token, nx=True, ex=RESULT_TTL_S)
        self._refuse(job.run_id, kind, message, hint)


def _shared_budget(limit: int, conn: Any, key: str | None) -> Any:
    """A Budget whose checks and charges go through the request's Redis counter, so phases on other workers share it."""
    from harness.errors import BudgetExhausted
    from harness.generation.budget import Budget, Usage

    class SharedBudget(Budget):
        def reserve(self, estimate: int, what: str) -> None:
            used = int(conn.get(key) or 0) if key else self.used.total
            if used + estimate > self.limit:
                raise BudgetExhausted(
                    f"token budget exhausted before {what}: {used} of {self.limit} used, about {estimate} more needed",
                    hint="raise the request's budget; what was made so far is kept",
                )

        def charge(self, usage: Usage) -> None:
            super().charge(usage)
            if key:
                conn.incrby(key, usage.total)

    return SharedBudget(limit)


def _not_run(job: Job, message: str, status: Literal["error", "cancelled"] = "error") -> str:
    """The result of a run the worker did not carry out: an engine failure (error) or a cancel, with the reason."""
    from harness.records import PolicyReceipt, RunResult

    return RunResult(
        run_id=job.run_id,
        status=status,
        exit_code=None,
        message=message[:2000],
        image="",
        pooled=False,
        duration_s=0.0,
        policy=PolicyReceipt(env_keys=tuple(sorted(job.env)), egress=job.egress, limits=job.limits.receipt()),
    ).model_dump_json()


def _claimed_run_id(signed: Any) -> str | None:
    """The run id an unverified job claims, to address the refusal to its submitter (nothing else is read)."""
    import re

    try:
        claimed = json.loads(signed.get("body", ""))["run_id"]
    except Exception:  # noqa: BLE001 - anything unreadable claims nothing
        return None
    return claimed if isinstance(claimed, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", claimed) else None


def _unpack_inputs(blob: bytes, into: Path) -> tuple[Path, ...]:
    """Unpack the job's inputs tar (the ``data`` filter refuses links out, devices, absolute paths)."""
    if not blob:
        return ()
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
        tar.extractall(into, filter="data")
    return tuple(sorted(into.iterdir()))


def _pack_outputs(folder: Path, cap: int) -> bytes:
    """``folder`` as a tar of regular files and folders, stopping before ``cap`` bytes of file data."""
    from harness.execution.outputs import MARKER

    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w:") as tar:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            if path.is_symlink() or not (path.is_file() or path.is_dir()) or path == folder / MARKER:
                continue  # the marker is this host's; the submitter's destination has its own
            if path.is_file():
                total += path.stat().st_size
                if total > cap:
                    break
            tar.add(str(path), arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


# -- the Celery side ------------------------------------------------------------------------------
_runner: _Runner | None = None


def start_worker(config: WorkerConfig, *, loglevel: str = "INFO") -> None:
    """Run a worker in this process until it is stopped (SIGTERM: warm shutdown, running jobs finish)."""
    from celery import signals

    # Celery leaves the root logger alone (worker_hijack_root_logger=False): harness logs on its own.
    own = logging.getLogger("harness")
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/%(name)s] %(message)s"))
    own.addHandler(handler)
    own.setLevel(loglevel)
    own.propagate = False
    app = celery_app(config.broker_url, visibility_timeout=config.visibility_timeout)

    @app.task(name=TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def run_job(signed: dict[str, Any]) -> None:
        assert _runner is not None
        _runner.handle(signed)

    def ready(**_: Any) -> None:
        global _runner
        _runner = _Runner(config)
        _runner.start()
        if config.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(config.metrics_port, addr=config.metrics_host, registry=_runner.metrics.registry)
        log.info("worker %s ready (%d threads, max run %gs)", config.hostname, config.concurrency, config.max_run_s)

    def shutdown(**_: Any) -> None:
        if _runner is not None:
            _runner.close()

    # Built before the consumer starts, so the first job finds the backend and its warm pool.
    signals.worker_init.connect(ready, weak=False)
    signals.worker_shutdown.connect(shutdown, weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={config.concurrency}",
            f"--hostname={config.hostname}",
            f"--queues={QUEUE}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def list_workers(broker_url: str, *, timeout: float = 1.0) -> list[dict[str, Any]]:
    """Live workers from Celery's inspect API, with the counts each one publishes in Redis."""
    import redis

    app = celery_app(broker_url)
    inspect = app.control.inspect(timeout=timeout)
    stats = inspect.stats() or {}
    active = inspect.active() or {}
    conn = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    rows = []
    for name in sorted(stats):
        raw = conn.get(f"harness:worker:{name}")
        row = json.loads(raw) if raw else {}
        pool = stats[name].get("pool", {})
        rows.append(
            {
                "hostname": name,
                "engine": row.get("engine", ""),
                "pool": f"{_pool_name(pool.get('implementation', ''))} x{pool.get('max-concurrency', '?')}",
                "running": len(active.get(name, [])),
                "done": row.get("done", 0),
                "failed": row.get("failed", 0),
            }
        )
    return rows


def _pool_name(implementation: str) -> str:
    """``threads`` for ``celery.concurrency.thread:TaskPool``, and so on."""
    module = implementation.split(":", 1)[0].rsplit(".", 1)[-1]
    return {"thread": "threads", "prefork": "prefork", "solo": "solo"}.get(module, module or "?")
