"""``RemoteBackend``: the Backend that sends each run to the queue and reads its events back live.

``run()`` packs the spec into a signed :class:`~harness.distributed.jobs.Job`, publishes it to
Celery, then reads the run's Redis Stream as the worker appends to it, handing every event to
``on_event`` as a local run would, and returns the same ``RunResult`` with the outputs collected
into ``spec.output_dir`` by the same collector as a local run. Display, ``--json``, reports
and history therefore cannot tell where a run happened, except by the policy receipt's host.

It never hangs: every wait has an end derived from the job's deadline (queue wait + the run's
time limit + the redelivery window), a refused job raises the worker's reason as one line, and a
lost broker raises at once (the Redis client does not retry silently onto a restarted, empty one).
Host requests (fetches, agent calls) are answered by the worker under the grant in the job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import tarfile
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.distributed.jobs import MAX_INPUTS_BYTES, RESULT_TTL_S, Job, entry_ok, job_key, keys, sign
from harness.distributed.worker import QUEUE, REDELIVERY_MARGIN_S, TASK, celery_app
from harness.errors import ConfigError, GateRefused, InputError, RunError, Tampered, Unavailable
from harness.events import EVENT_ADAPTER, LogEvent
from harness.execution.backend import AgentHandler, Backend, EventCallback, FetchHandler
from harness.records import RunResult, RunSpec

if TYPE_CHECKING:
    from harness.settings import Settings

__all__ = ["RemoteBackend"]

QUEUE_WAIT_ENV = "HARNESS_QUEUE_WAIT_S"
MAX_RUN_ENV = "HARNESS_WORKER_MAX_RUN_S"
# SET the counter to ARGV[1] unless it is already higher; keep it a day.
_RAISE_TO = (
    "local v = tonumber(redis.call('get', KEYS[1]) or '0') "
    "if tonumber(ARGV[1]) > v then redis.call('set', KEYS[1], ARGV[1]) end "
    "redis.call('expire', KEYS[1], ARGV[2]) return 0"
)
_REFUSALS: dict[str, type[Tampered] | type[GateRefused] | type[ConfigError]] = {
    "Tampered": Tampered,
    "GateRefused": GateRefused,
    "ConfigError": ConfigError,
}


class RemoteBackend(Backend):
    """Runs each script on a ``harness worker`` through the broker at ``broker_url``."""

    def __init__(
        self,
        settings: Settings,
        broker_url: str,
        *,
        key: bytes | None = None,
        queue_wait_s: float | None = None,
        max_run_s: float | None = None,
        gate_policy: str = "standard",
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.settings = settings
        self.broker_url = broker_url
        self.key = key if key is not None else job_key()
        self.queue_wait_s = queue_wait_s if queue_wait_s is not None else float(os.environ.get(QUEUE_WAIT_ENV, 300))
        # The longest run a worker takes: after a lost attempt the job comes back within it (+ the margin).
        self.max_run_s = max_run_s if max_run_s is not None else float(os.environ.get(MAX_RUN_ENV, 3600))
        self.gate_policy = gate_policy
        # No silent retries: a reconnect onto a restarted broker would find this run's state gone.
        self.redis = redis.Redis.from_url(
            broker_url, socket_connect_timeout=5, socket_timeout=10, retry=Retry(NoBackoff(), 0)
        )
        self.app = celery_app(broker_url)
        self._lock = threading.Lock()
        self._budget_keys: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # one per budget

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteBackend:
        """The remote backend for ``settings.broker_url``."""
        assert settings.broker_url is not None
        return cls(settings, settings.broker_url)

    def run(
        self,
        spec: RunSpec,
        *,
        on_event: EventCallback | None = None,
        on_agent: AgentHandler | None = None,
        on_fetch: FetchHandler | None = None,
    ) -> RunResult:
        """Send ``spec`` to a worker, stream its events to ``on_event``, and return its result."""
        from harness.execution.outputs import prepare_destination

        limits = spec.limits or self.settings.limits
        out_dir = (
            None if spec.output_dir is None else prepare_destination(spec.output_dir, spec.output_mode, spec.run_id)
        )
        budget = _budget_of(on_agent)
        now = time.time()
        job = Job(
            run_id=spec.run_id,
            source_b64=base64.b64encode(spec.script.encode()).decode("ascii"),
            name=spec.name,
            argv=spec.argv,
            env=spec.env,
            inputs_b64=base64.b64encode(_inputs_tar(spec.inputs)).decode("ascii") if spec.inputs else "",
            limits=limits,
            egress=spec.egress,
            agents=on_agent is not None,
            agent_tokens=budget.limit if budget is not None else self.settings.budget,
            budget_key=self._budget_key(budget),
            gate_policy=spec.gate_policy or ("strict" if self.gate_policy == "strict" else "standard"),
            approval_sha256=spec.approved_sha256,
            submitted_at=now,
            deadline=now + self.queue_wait_s,
        )
        signed = sign(job, self.key)
        try:
            self.app.send_task(
                TASK,
                args=[signed.model_dump()],
                queue=QUEUE,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
            )
        except Exception as exc:  # noqa: BLE001 - kombu raises its own and the socket's errors
            raise Unavailable(
                f"no broker answered at {_redact(self.broker_url)}: {type(exc).__name__}",
                hint="start redis-server, or check HARNESS_BROKER_URL",
            ) from None
        try:
            return self._follow(job, out_dir, on_event, budget)
        except BaseException:
            # Ctrl-C, or the submitter gave up: the worker stops the run rather than finishing it for no one.
            self.cancel(job.run_id)
            raise

    def cancel(self, run_id: str) -> bool:
        """Ask the worker running ``run_id`` to stop it (within half a second); the run ends ``cancelled``."""
        try:
            self.redis.set(keys(run_id).cancel, "1", ex=RESULT_TTL_S)
        except Exception:  # noqa: BLE001 - the broker is gone: nothing can be asked of the worker
            return False
        return True

    def _budget_key(self, budget: Any) -> str | None:
        """The Redis counter of ``budget``'s tokens, made on its first run and raised to what it has used here."""
        if budget is None:
            return None
        with self._lock:
            key = self._budget_keys.get(budget)
            if key is None:
                key = self._budget_keys[budget] = f"harness:budget:{uuid.uuid4().hex}"
        # Calls made here (generation, repairs) count too: the counter is at least what the budget has seen.
        self.redis.eval(_RAISE_TO, 1, key, budget.used.total, 24 * 3600)
        return key

    def _follow(self, job: Job, out_dir: Path | None, on_event: EventCallback | None, budget: Any = None) -> RunResult:
        """Read the run's stream until its result or refusal; every wait bounded."""
        import redis

        k = keys(job.run_id)
        run_window = job.limits.timeout_s + REDELIVERY_MARGIN_S
        give_up = job.deadline + run_window  # a worker takes it by the deadline, or refuses it
        last = "0-0"
        while True:
            if time.time() > give_up:
                raise RunError(
                    f"no result for run {job.run_id} from the workers in time",
                    hint="no worker took it, or its worker was lost and not replaced; see harness workers",
                    run_id=job.run_id,
                )
            try:
                got: Any = self.redis.xread({k.events: last}, count=200, block=1000)
            except redis.RedisError as exc:
                raise RunError(
                    f"lost the broker at {_redact(self.broker_url)} during run {job.run_id}: {type(exc).__name__}",
                    hint="the run's result is unknown; run it again once the broker is back",
                    run_id=job.run_id,
                ) from None
            for _stream, entries in got or ():
                for entry_id, raw in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    fields = {_s(a): _s(b) for a, b in raw.items()}
                    kind = fields.get("t")
                    # A refusal may come unsigned (a worker cannot sign for a job it could not
                    # verify) and can only fail the run; everything else must carry the job key's MAC.
                    if kind != "refused" and not entry_ok(self.key, k.events, fields):
                        raise Tampered(
                            f"an entry on run {job.run_id}'s stream is not signed by a worker holding the job key",
                            hint="something other than a harness worker writes to the broker",
                        )
                    if kind == "attempt":
                        n = int(fields.get("n", "1"))
                        # A new attempt restarts the clock: the run gets its whole time again, plus
                        # the time a lost attempt takes to come back.
                        give_up = time.time() + run_window + self.max_run_s + REDELIVERY_MARGIN_S
                        if n > 1 and on_event is not None:
                            on_event(
                                LogEvent(
                                    level="warning",
                                    message=f"attempt {n} on {fields.get('worker', '?')}: the previous worker was "
                                    "lost; the run starts again (its egress and agent calls may repeat)",
                                )
                            )
                    elif kind == "event" and on_event is not None:
                        on_event(EVENT_ADAPTER.validate_json(fields.get("data", "{}")))
                    elif kind == "refused":
                        cls = _REFUSALS.get(fields.get("kind", ""))
                        message = f"a worker refused run {job.run_id}: {fields.get('message', '')}"
                        if cls is None:
                            raise RunError(message, hint=fields.get("hint", ""), run_id=job.run_id)
                        raise cls(message, hint=fields.get("hint", ""))
                    elif kind == "usage" and budget is not None:
                        from harness.generation.budget import Usage

                        # Charged here too (not to the counter again): the request's report counts it.
                        budget.charge(Usage.model_validate_json(fields.get("data", "{}")))
                    elif kind == "result":
                        return self._result(job, fields, out_dir)

    def _result(self, job: Job, fields: dict[str, str], out_dir: Path | None) -> RunResult:
        """The worker's result with the outputs collected here, as a local run collects them."""
        from harness.execution.outputs import collect_outputs, normalise_output_path

        result = RunResult.model_validate_json(fields.get("data", "{}"))
        stored: Any = self.redis.get(keys(job.run_id).outputs)
        blob = stored if isinstance(stored, bytes) else b""
        if not hmac.compare_digest(hashlib.sha256(blob).hexdigest(), fields.get("outputs_sha256", "")):
            raise Tampered(
                f"run {job.run_id}'s outputs in the broker are not the ones its worker sent",
                hint="something other than a harness worker writes to the broker",
            )
        declared = {
            path: e.description
            for e in result.events
            if e.kind == "artifact" and (path := normalise_output_path(e.path)) is not None
        }
        got = collect_outputs(
            io.BytesIO(blob), out_dir, cap=job.limits.output_size, declared=declared, max_files=job.limits.output_files
        )
        self.redis.delete(keys(job.run_id).outputs)
        return result.model_copy(
            update={
                "output_dir": out_dir,
                "artifacts": tuple(got.artifacts),
                "output_warnings": (*result.output_warnings, *got.warnings),
                "output_conflicts": tuple(got.conflicts),
                "outputs_partial": result.outputs_partial or got.partial,
            }
        )

    def close(self) -> None:
        """Drop the connections (runs belong to the workers; nothing to remove here)."""
        self.redis.close()
        self.app.close()


def _inputs_tar(inputs: tuple[Path, ...]) -> bytes:
    """The inputs as a tar, top-level names as /input will show them; InputError past the cap."""
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w:") as tar:
        for given in inputs:
            path = Path(given).expanduser().resolve()
            if not path.exists():
                raise InputError(f"input path {given} does not exist", hint="check the input's path")
            name = path.name or "root"
            if name in seen:
                raise InputError(
                    f"two inputs are both called {name!r}", hint="inputs appear as /input/<name>; rename one"
                )
            seen.add(name)
            # Symlinks inside inputs are not followed: the sandbox sees no more than the user named.
            tar.add(str(path), arcname=name, filter=lambda i: i if (i.isfile() or i.isdir()) else None)
            if buf.tell() > MAX_INPUTS_BYTES:
                break
    if buf.tell() > MAX_INPUTS_BYTES:
        raise InputError(
            f"the inputs are over the {MAX_INPUTS_BYTES // 2**20} MiB a distributed run may carry",
            hint="run it locally (without HARNESS_BROKER_URL), or give smaller inputs",
        )
    return buf.getvalue()


def _budget_of(on_agent: AgentHandler | None) -> Any:
    """The request's Budget behind an agent handler (an AgentBroker's LLM), or None."""
    from harness.generation.budget import Budget

    budget = getattr(getattr(on_agent, "llm", None), "budget", None)
    return budget if isinstance(budget, Budget) else None


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _redact(url: str) -> str:
    """``url`` without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
