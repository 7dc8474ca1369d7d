"""The Docker backend: every script in its own hardened, throwaway container.

Each run gets a fresh container (cold, or pre-started from the warm pool), receives its job
on stdin, streams its output back over the attach connection, and is removed afterwards,
also on timeout, error or Ctrl-C. Containers carry labels naming their owner process, so
a later harness removes what a crashed one left. The container is the security boundary.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness import __version__
from harness.errors import EngineRefused, EngineUnavailable, Fix, InputError
from harness.events import AgentRequestEvent, FetchRequestEvent, RunFinished, RunStarted
from harness.execution.backend import AgentHandler, Backend, EventCallback, FetchHandler, answer_request
from harness.execution.engines import copy_image, engine_flags, engine_name, selectable_runtimes
from harness.execution.image import ImageBuilder, Progress
from harness.execution.limits import Limits
from harness.execution.outputs import collect_run_outputs, prepare_destination
from harness.execution.pool import Reaper, WarmPool
from harness.execution.runtimes import flags_for, resolve
from harness.execution.stream import Demuxer, RunReader
from harness.records import PolicyReceipt, RunResult, RunSpec, RunStatus
from harness.settings import Settings

__all__ = ["LABEL", "DockerBackend", "connect", "owner_alive", "owner_token", "sweep"]

log = logging.getLogger(__name__)

LABEL = "harness.managed"
READY = b'{"v": 1, "kind": "_harness_ready"}\n'  # the entrypoint's first line, see sandbox/entrypoint.py
SUPERVISOR_USER = "0:0"  # the supervisor and init; scripts run as SCRIPT_USER (sandbox/entrypoint.py)
SCRIPT_USER = "10001:10001"
_UID = "10001"
# What the supervisor starts with (the engine drops every other capability). A non-root
# container user gets added capabilities only in its bounding set (measured on Docker 20.10),
# and no-new-privileges ignores file capabilities, so uid 0 is how it receives them.
SUPERVISOR_CAPS = ("SETUID", "SETGID", "SETPCAP", "KILL")
IDLE_MARGIN_S = 5.0  # a pooled container this close to its idle deadline is not handed out
SIGKILLED = 128 + 9  # the OOM killer's signal: such an exit is always left to the engine to explain
EndReport = Literal["trusted", "engine"]
DEADLINE_GRACE_S = 2.0  # the supervisor's own end comes this long after the host's kill
STOP_GRACE_S = 3.0  # after the time limit: the supervisor stops the script and sends /output in this long
_RAISE_TIMEOUT = "to allow more, raise the limit (--timeout, or HARNESS_TIMEOUT_S)"


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def owner_token(pid: int | None = None) -> str:
    """``host:pid:start`` naming a live process, so its containers are not swept by others."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(token: str) -> bool:
    """True unless ``token`` names a process on this host that is gone."""
    host, _, rest = token.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname():
        return True  # another machine's container on a shared engine: not ours to judge
    if not pid.isdigit():
        return False
    return _start_time(int(pid)) == start and start != "0"


def connect(settings: Settings) -> Any:
    """A docker client for the configured engine, checked with a ping; EngineError when unusable."""
    import docker
    import docker.errors

    where = settings.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = (
            docker.DockerClient(base_url=where, timeout=120) if settings.docker_host else docker.from_env(timeout=120)
        )
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise EngineRefused(
                f"the Docker engine at {where} refused the connection (permission denied)",
                hint="add your user to the docker group, or run as root",
            ) from None
        raise EngineUnavailable(
            f"no Docker engine answered at {where}",
            hint="start one (scripts/ensure-docker, or `sudo systemctl start docker`) or set DOCKER_HOST",
        ) from None


def sweep(client: Any, *, everything: bool = False) -> list[str]:
    """Remove harness containers whose owner process is gone (or all, with ``everything``)."""
    removed = []
    for info in client.api.containers(all=True, filters={"label": LABEL}):
        token = (info.get("Labels") or {}).get("harness.owner", "")
        if not everything and token and owner_alive(token):
            continue
        try:
            client.api.remove_container(info["Id"], force=True)
            removed.append(info["Id"][:12])
        except Exception as exc:  # noqa: BLE001 - a sweep never fails the caller
            log.warning("could not remove leftover container %s: %s", info["Id"][:12], exc)
    return removed


@dataclass
class _Handle:
    """A created, attached and started container waiting for its one job."""

    cid: str
    sock: Any
    raw: socket.socket
    pooled: bool
    runtime: str  # as the engine reports it for this container, not as it was asked for
    timings: dict[str, float] = field(default_factory=dict)
    closed: bool = False
    demux: Demuxer = field(default_factory=Demuxer)
    early: bytes = b""  # stdout that arrived with the ready line (normally none)
    started: float = field(default_factory=time.monotonic)  # its supervisor's idle clock started about then


def _input_mounts(inputs: Iterable[Path]) -> dict[str, Path]:
    mounts: dict[str, Path] = {}
    for path in inputs:
        resolved = Path(path).expanduser().resolve()
        if not resolved.exists():
            raise InputError(f"input path {path} does not exist", hint="check the input's path").fixed_by(
                Fix("give_input", "inputs")
            )
        name = resolved.name or "root"
        if name in mounts:
            raise InputError(f"two inputs are both called {name!r}", hint="inputs appear as /input/<name>; rename one")
        mounts[name] = resolved
    return mounts


def _inputs_size(mounts: dict[str, Path]) -> int:
    total = 0
    for path in mounts.values():
        if path.is_file():
            total += path.stat().st_size
        else:
            for root, _, files in os.walk(path):
                total += sum(
                    os.path.getsize(os.path.join(root, f)) for f in files if not os.path.islink(os.path.join(root, f))
                )
    return total


def _inputs_tar(mounts: dict[str, Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, path in mounts.items():
            # Symlinks inside inputs are not followed: the sandbox sees no more than the user named.
            tar.add(str(path), arcname=name, filter=lambda i: i if (i.isfile() or i.isdir()) else None)
    return buf.getvalue()


class DockerBackend(Backend):
    """Runs scripts in hardened containers on a Docker engine (docker SDK, API only)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Any = None,
        pool_size: int | None = None,
        progress: Progress | None = None,
        idle_timeout_s: float | None = None,
        end_report: EndReport = "trusted",
    ) -> None:
        self.settings = settings or Settings.from_env()
        # "trusted": a run's status comes from the supervisor's end report when it is complete
        # (docs/supervisor.md, "The end report"), and the container's exit and removal happen in
        # the background. "engine": every status waits for the engine's exit code, as before.
        self.end_report = end_report
        # A container that receives no job within this ends itself (the pool then replaces it):
        # if this process dies, nothing it started waits forever.
        self.idle_timeout_s = self.settings.pool_idle_s if idle_timeout_s is None else idle_timeout_s
        self.client = client or connect(self.settings)
        info = self.client.info()
        version = self.client.version()
        self.engine = engine_name(version)
        self.engine_version = f"{self.engine} {version.get('Version', '?')}"
        # What the engine can run, and what this backend's runs get unless a spec names another.
        self.runtimes = selectable_runtimes(self.engine, info)
        self._engine_default = str(info.get("DefaultRuntime") or "runc")
        self.runtime = resolve(self.settings.runtime, self.runtimes, engine_default=self._engine_default)
        self.swept = sweep(self.client)
        builder = ImageBuilder(self.client, self.settings, progress)
        if self.engine == "podman" and builder.current() is None and not self.settings.image:
            _image_from_docker(self.settings, self.client, progress)
        self.image = builder.ensure()
        self.owner = owner_token()
        self._active: dict[str, str] = {}
        self._running: set[str] = set()  # run ids between run()'s start and end
        self._cancelled: set[str] = set()  # of those, the ones cancel() was called for
        self._interrupted: set[str] = set()  # and the ones interrupt() was called for
        self._lock = threading.Lock()
        self._closed = False
        self._reaper = Reaper(self._remove)
        size = self.settings.pool_size if pool_size is None else pool_size
        self._pool: WarmPool[_Handle] | None = (
            # The pool holds containers of one configuration: the settings' limits under this
            # backend's runtime. A run that asks for other limits or another runtime starts cold.
            WarmPool(size, self._launch_pooled, self._discard) if size > 0 else None
        )

    # -- public -------------------------------------------------------------------------------
    def run(
        self,
        spec: RunSpec,
        *,
        on_event: EventCallback | None = None,
        on_agent: AgentHandler | None = None,
        on_fetch: FetchHandler | None = None,
    ) -> RunResult:
        """Run ``spec`` in a fresh container; the host decides its status."""
        if self._closed:
            raise RuntimeError("this backend is closed")
        with self._lock:
            self._running.add(spec.run_id)
        try:
            return self._run(spec, on_event, on_agent, on_fetch)
        finally:
            with self._lock:
                self._running.discard(spec.run_id)
                self._cancelled.discard(spec.run_id)
                self._interrupted.discard(spec.run_id)

    def cancel(self, run_id: str) -> bool:
        """Kill the container of run ``run_id`` (or the one it is about to get); the run ends ``cancelled``."""
        with self._lock:
            if run_id not in self._running:
                return False
            self._cancelled.add(run_id)
            cids = [cid for cid, owner in self._active.items() if owner == run_id]
        for cid in cids:
            self._kill(cid)
        return True

    def interrupt(self, run_id: str) -> bool:
        """Ask the supervisor of run ``run_id`` to stop the script now and still send /output.

        The run ends ``interrupted`` with what the script had written, kept and marked partial
        (the same path as the supervisor's stop at the time limit). False when it is not running here.
        """
        with self._lock:
            if run_id not in self._running:
                return False
            self._interrupted.add(run_id)
            cids = [cid for cid, owner in self._active.items() if owner == run_id]
        for cid in cids:
            self._ask_stop(cid)
        return True

    def _run(
        self,
        spec: RunSpec,
        on_event: EventCallback | None,
        on_agent: AgentHandler | None,
        on_fetch: FetchHandler | None,
    ) -> RunResult:
        limits = spec.limits or self.settings.limits
        mounts = _input_mounts(spec.inputs)
        out_dir = (
            None if spec.output_dir is None else prepare_destination(spec.output_dir, spec.output_mode, spec.run_id)
        )
        runtime = (
            self.runtime
            if spec.runtime is None
            else resolve(spec.runtime, self.runtimes, engine_default=self._engine_default)
        )
        handle = None
        inputs_blob = b""
        if self._pool is not None and limits == self.settings.limits and runtime == self.runtime:
            fits = not mounts or _inputs_size(mounts) <= limits.input_size
            handle = self._take_live(runtime) if fits else None
            if handle is not None and mounts:
                inputs_blob = _inputs_tar(mounts)
        if handle is None:
            handle = self._launch(limits, mounts, pooled=False, run_id=spec.run_id, runtime=runtime)
        self._track(handle.cid, spec.run_id)
        if self._is_cancelled(spec.run_id):
            self._kill(handle.cid)  # cancelled while the container was being made: it never gets the job
        elif self._is_interrupted(spec.run_id):
            self._ask_stop(handle.cid)  # the supervisor remembers it and stops the script as it starts
        try:
            handlers = (on_agent, on_fetch if spec.egress else None)
            result = self._drive(handle, spec, limits, mounts, inputs_blob, out_dir, on_event, handlers)
        except BaseException:
            # Ctrl-C or a crash: stop the container now rather than in the background.
            self._untrack(handle.cid)
            self._close_sock(handle)
            self._remove(handle.cid)
            raise
        self._untrack(handle.cid)
        self._close_sock(handle)
        self._reaper.put(handle.cid)
        if handle.pooled and self._pool is not None:
            self._pool.refill()
        return result

    def _take_live(self, runtime: str) -> _Handle | None:
        """A pooled container under ``runtime`` that is still alive (one killed from outside is discarded)."""
        assert self._pool is not None
        while (handle := self._pool.take()) is not None:
            if handle.runtime != runtime:
                # The engine ran it under another runtime than asked: never hand out a weaker boundary.
                log.warning("pooled container %s runs under %s, not %s", handle.cid[:12], handle.runtime, runtime)
                self._discard(handle)
                continue
            try:
                handle.raw.setblocking(False)
                try:
                    # After its ready line a waiting supervisor says nothing: anything readable
                    # (its idle-deadline notice, or end of file) means it is gone.
                    handle.raw.recv(1, socket.MSG_PEEK)
                    gone = True
                except BlockingIOError:
                    gone = False  # nothing to read: still waiting for its job, as it should be
                finally:
                    handle.raw.setblocking(True)
            except OSError:
                gone = True
            # One near its idle deadline could end itself between hand-over and the job header.
            margin = min(IDLE_MARGIN_S, self.idle_timeout_s / 4)
            stale = time.monotonic() - handle.started > self.idle_timeout_s - margin
            if not gone and not stale:
                return handle
            self._discard(handle)
            self._pool.refill()
        self._pool.refill()
        return None

    def pool_state(self) -> tuple[int, int]:
        """(ready, size) of the warm pool; (0, 0) without one."""
        return (0, 0) if self._pool is None else (self._pool.ready, self._pool.size)

    def wait_pool(self, timeout: float = 30.0) -> bool:
        """Block until the warm pool is full; False if there is no pool or it did not fill in time."""
        return self._pool is not None and self._pool.wait_ready(self._pool.size, timeout)

    def wait_removed(self) -> None:
        """Block until every container of a finished run is removed (that happens in the background)."""
        self._reaper.drain()

    def close(self) -> None:
        """Drain the pool, remove every container this backend made, and stop its threads."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.close()
        with self._lock:
            leftover = list(self._active)
        for cid in leftover:
            self._remove(cid)
        self._reaper.close()

    # -- containers ---------------------------------------------------------------------------
    def _launch_pooled(self) -> _Handle:
        return self._launch(self.settings.limits, {}, pooled=True, runtime=self.runtime)

    def _labels(self, run_id: str) -> dict[str, str]:
        return {LABEL: "1", "harness.version": __version__, "harness.owner": owner_token(), "harness.run_id": run_id}

    def _launch(
        self, limits: Limits, mounts: dict[str, Path], *, pooled: bool, runtime: str, run_id: str = "pool"
    ) -> _Handle:
        """Create, attach and start a container under ``runtime`` that waits for one job on stdin."""
        import docker.errors
        from docker.types import LogConfig, Ulimit

        api = self.client.api
        engine = engine_flags(self.engine)
        opts = "rw,noexec,nosuid,nodev" + (f",nr_inodes={limits.inodes}" if engine.inodes else "")
        if engine.tmpfs_owner:
            owned = f"{opts},uid={_UID},gid={_UID}"
            work, output = f"{owned},mode=0700", f"{owned},mode=0755"
        else:
            # The engine cannot give the script's uid the folder: the supervisor does (CAP_CHOWN).
            work = output = opts
        tmpfs = {
            "/tmp": f"{opts},size={limits.tmp_size},mode=1777",  # noqa: S108 - the container's own tmpfs
            "/work": f"{work},size={limits.work_size}",
            "/output": f"{output},size={limits.output_size}",
        }
        if pooled:
            # Owned by the supervisor, which copies the inputs in: the script can read them only.
            owner = ",uid=0,gid=0" if engine.tmpfs_owner else ""  # root's either way; Podman refuses the option
            tmpfs["/input"] = f"{opts}{owner},size={limits.input_size},mode=0755"
        flags = flags_for(runtime, limits.pids)
        tmpfs.update(flags.tmpfs)
        limit = flags.nproc if flags.nproc is not None else engine.nproc
        nproc = [] if limit is None else [Ulimit(name="nproc", soft=limit, hard=limit)]
        binds = {str(path): {"bind": f"/input/{name}", "mode": "ro"} for name, path in mounts.items()}
        t0 = time.monotonic()
        try:
            host_config = api.create_host_config(
                network_mode="none",
                read_only=True,
                cap_drop=["ALL"],
                cap_add=[*SUPERVISOR_CAPS, *engine.cap_add],
                security_opt=["no-new-privileges"],
                init=True,
                pids_limit=flags.pids_limit,
                mem_limit=limits.memory,
                memswap_limit=limits.memory,
                nano_cpus=int(limits.cpus * 1e9),
                ulimits=[
                    Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
                    Ulimit(name="fsize", soft=limits.fsize, hard=limits.fsize),
                    Ulimit(name="core", soft=0, hard=0),
                    *nproc,
                ],
                tmpfs=tmpfs,
                # No /dev/shm at all: no scaffold needs POSIX shared memory, and Docker would
                # mount 64 MB for a size of 0.
                ipc_mode="none",
                # Nothing revives a container whose supervisor ended it (deadline or idle).
                restart_policy={"Name": "no"},
                log_config=LogConfig(type="none"),
                binds=binds or None,
                runtime=runtime,
                oom_score_adj=500,
            )
            created = api.create_container(
                self.image,
                command=["--idle-timeout", f"{self.idle_timeout_s:g}"],
                user=SUPERVISOR_USER,
                stdin_open=True,
                tty=False,
                environment={},
                labels=self._labels(run_id),
                host_config=host_config,
                working_dir="/work",
                hostname="sandbox",
                network_disabled=True,
            )
        except docker.errors.APIError as exc:
            raise EngineRefused("the engine refused to create the sandbox container", hint=_api_text(exc)) from None
        cid = created["Id"]
        t1 = time.monotonic()
        try:
            # The receipt names the runtime the engine recorded for this container, not the one asked for.
            actual = self._runtime_of(cid)
            if actual != runtime:
                # Never run a script under another boundary than the one asked for.
                raise EngineRefused(
                    f"the engine created the container under {actual}, not {runtime} as asked",
                    hint="check the engine's runtime configuration (harness sandbox status)",
                )
            sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            t2 = time.monotonic()
            api.start(cid)
        except BaseException as exc:
            self._remove(cid)
            if isinstance(exc, docker.errors.APIError):
                raise EngineRefused("the engine could not start the sandbox container", hint=_api_text(exc)) from None
            raise
        t3 = time.monotonic()
        # The SDK hands back a SocketIO wrapper around the hijacked connection; keep the socket too.
        raw = getattr(sock, "_sock", sock)
        handle = _Handle(cid=cid, sock=sock, raw=raw, pooled=pooled, runtime=actual, started=t2)
        try:
            self._await_ready(handle)
        except BaseException:
            self._discard(handle)
            raise
        handle.timings = {
            "create_s": t1 - t0,
            "attach_s": t2 - t1,
            "start_s": t3 - t2,
            "ready_s": time.monotonic() - t3,
        }
        return handle

    def _runtime_of(self, cid: str) -> str:
        """The OCI runtime the engine recorded for container ``cid``."""
        api = self.client.api
        if self.engine == "podman":
            # Podman's Docker-compatible inspect says "oci"; its own API names the runtime.
            reply = api._get(f"{api.base_url}/v4.0.0/libpod/containers/{cid}/json")
            return str(api._result(reply, json=True).get("OCIRuntime") or self._engine_default)
        return str(api.inspect_container(cid)["HostConfig"].get("Runtime") or self._engine_default)

    def _await_ready(self, handle: _Handle, timeout: float = 60.0) -> None:
        """Read until the entrypoint says it waits for its job (its interpreter is up)."""
        seen = b""
        errors = b""
        deadline = time.monotonic() + timeout
        while READY not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineRefused("the sandbox container did not become ready", hint=f"waited {timeout:g} s")
            handle.raw.settimeout(remaining)
            try:
                data = handle.raw.recv(65536)
            except TimeoutError:
                continue
            if not data:
                tail = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
                raise EngineRefused("the sandbox container exited before it was ready", hint=tail[0][:300])
            for stream, payload in handle.demux.feed(data):
                if stream == 1:
                    seen += payload
                else:
                    errors = (errors + payload)[-4096:]
        handle.early = seen.split(READY, 1)[1]

    def _remove(self, cid: str) -> None:
        import docker.errors

        try:
            try:
                self.client.api.remove_container(cid, force=True)
            except docker.errors.APIError as exc:
                if "could not be stopped" not in _api_text(exc):
                    raise
                # Podman refuses a forced removal of a container that stopped meanwhile: once more, unforced.
                self.client.api.remove_container(cid)
        except docker.errors.NotFound:
            pass
        except Exception as exc:  # noqa: BLE001 - cleanup failures are logged, not raised
            log.warning("could not remove container %s: %s", cid[:12], exc)

    def _discard(self, handle: _Handle) -> None:
        self._close_sock(handle)
        self._remove(handle.cid)

    @staticmethod
    def _close_sock(handle: _Handle) -> None:
        if handle.closed:
            return
        handle.closed = True
        # Closing the SocketIO wrapper alone leaves the socket itself open.
        for closable in (handle.sock, handle.raw):
            try:
                closable.close()
            except Exception as exc:  # noqa: BLE001 - cleanup failures are logged, not raised
                log.debug("closing the attach socket: %s", exc)

    def _track(self, cid: str, run_id: str) -> None:
        with self._lock:
            self._active[cid] = run_id

    def _untrack(self, cid: str) -> None:
        with self._lock:
            self._active.pop(cid, None)

    def _is_cancelled(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._cancelled

    def _is_interrupted(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._interrupted

    # -- one run --------------------------------------------------------------------------------
    def _drive(
        self,
        handle: _Handle,
        spec: RunSpec,
        limits: Limits,
        mounts: dict[str, Path],
        inputs_blob: bytes,
        out_dir: Path | None,
        on_event: EventCallback | None,
        handlers: tuple[AgentHandler | None, FetchHandler | None],
    ) -> RunResult:
        import docker.errors

        nonce = secrets.token_hex(16)  # the entrypoint reads exactly 32 hex digits
        reader = RunReader(
            nonce=nonce,
            stdout_cap=limits.stdout_cap,
            archive_cap=2 * limits.output_size + 16 * 1024 * 1024,
            on_event=on_event,
        )
        reader.emit(RunStarted(run_id=spec.run_id, image=self.image, pooled=handle.pooled, runtime=handle.runtime))
        header = {
            "v": 1,
            "script": spec.script,
            "name": spec.name,
            "argv": list(spec.argv),
            "env": dict(spec.env),
            "inputs_size": len(inputs_blob),
            "max_outputs": limits.output_files,  # the host enforces it too; this only spares the stream
            # The supervisor reads OOM kills only from a cgroup with this limit: its own container's.
            "memory_limit": limits.memory,
            # The supervisor stops the script at the limit and still sends /output (kept, partial);
            # it ends itself at deadline_s, so the run ends even if this process dies.
            "timeout_s": limits.timeout_s,
            "deadline_s": limits.timeout_s + DEADLINE_GRACE_S + STOP_GRACE_S,
        }
        raw = handle.raw
        killed_for = ""
        engine_error = ""
        try:
            # The nonce goes first, on its own line: the entrypoint keeps it out of the script's reach.
            raw.sendall(nonce.encode() + b"\n" + json.dumps(header).encode() + b"\n" + inputs_blob)
        except OSError as exc:
            engine_error = f"could not hand the script to the container: {exc}"
        t_handover = reader.elapsed()
        trusted = False
        # Host requests are answered until the limit; the stream is read a little longer, for the
        # supervisor's own stop and the outputs it sends; past that the host kills the container.
        deadline = reader.t0 + limits.timeout_s
        hard_deadline = deadline + STOP_GRACE_S
        # Why the host asked the supervisor to stop the script early ("interrupted", "output"):
        # it then still sends /output, within STOP_GRACE_S, or the container is killed.
        stop_for = ""
        demux = handle.demux
        if handle.early:
            reader.feed(1, handle.early)
        while not engine_error:
            remaining = hard_deadline - time.monotonic()
            if remaining <= 0:
                killed_for = "timeout"
                break
            raw.settimeout(min(remaining, 0.5))
            try:
                data = raw.recv(1 << 18)
            except TimeoutError:
                if not stop_for and self._is_interrupted(spec.run_id):
                    stop_for = "interrupted"
                    deadline = time.monotonic()
                    hard_deadline = min(hard_deadline, deadline + STOP_GRACE_S)
                continue
            except OSError as exc:
                engine_error = f"lost the connection to the container: {exc}"
                break
            if not data:
                break
            for stream, payload in demux.feed(data):
                reader.feed(stream, payload)
            # An agent call or a fetch blocks this loop; past the deadline, the next one is not made.
            while reader.host_requests and time.monotonic() < deadline:
                self._answer(raw, reader, reader.host_requests.pop(0), handlers, deadline)
            if time.monotonic() >= hard_deadline:
                killed_for = stop_for or "timeout"
                break
            if not stop_for and (reader.over_cap or self._is_interrupted(spec.run_id)):
                stop_for = "output" if reader.over_cap else "interrupted"
                if stop_for == "output":
                    self._ask_stop(handle.cid)
                # No more answers to the script's requests; the stream is read until the outputs arrive.
                deadline = time.monotonic()
                hard_deadline = min(hard_deadline, deadline + STOP_GRACE_S)
            if reader.archive_over_cap:
                killed_for = "archive"
                break
            if self.end_report == "trusted" and _report_decides(reader):
                trusted = True  # the container's exit is not waited for: it is removed in the background
                break
        if self._is_cancelled(spec.run_id):
            # The kill ended the stream (or will): whatever else happened, the caller stopped it.
            killed_for, engine_error, trusted = "cancelled", "", False
        t_stream = reader.elapsed()
        if killed_for or engine_error:
            # Close our end first: while the engine is blocked writing to an attach stream nobody
            # reads, it does not finish the kill.
            self._close_sock(handle)
            self._kill(handle.cid)
        reader.finish()

        exit_code: int | None = None
        oom = False
        if trusted:
            exit_code = reader.reported_exit
            oom = exit_code != 0 and bool(reader.oom_kills)
        else:
            try:
                exit_code = int(self.client.api.wait(handle.cid, timeout=30)["StatusCode"])
                if exit_code != 0:
                    state = self.client.api.inspect_container(handle.cid)["State"]
                    oom = bool(state.get("OOMKilled"))
                    if self.engine == "podman":
                        # Podman 4.3 on cgroup v1 never sets OOMKilled: the container's own cgroup
                        # count, which the supervisor read from the kernel, is the evidence there.
                        oom = oom or bool(reader.oom_kills)
            except (docker.errors.DockerException, OSError, KeyError, ValueError) as exc:
                engine_error = engine_error or f"the engine did not report the exit: {exc}"
        t_wait = reader.elapsed()

        if stop_for == "interrupted" and reader.sent and not reader.reported_interrupt:
            # The script had ended on its own before the stop reached it: its run is what it was.
            stop_for = ""
        collected = collect_run_outputs(reader, out_dir, limits)
        if reader.archive is None and not killed_for and not engine_error:
            collected.leave("the container ended without sending its outputs")
        if reader.archive_over_cap:
            collected.leave("outputs exceeded the collection cap and were not all collected")
        if (reader.reported_timeout or (reader.ended_s or 0) > limits.timeout_s) and reader.sent and not killed_for:
            collected.leave("the script was stopped at its time limit: its outputs are what it had written by then")
        elif stop_for and reader.sent and not killed_for:
            why = "it was interrupted" if stop_for == "interrupted" else "its output passed the cap"
            collected.leave(f"the script was stopped because {why}: its outputs are what it had written by then")
        warnings = collected.warnings
        if (
            not trusted
            and reader.reported_exit is not None
            and exit_code is not None
            and reader.reported_exit != exit_code
        ):
            # The engine's code decides; a difference means something in the container interfered.
            warnings.append(f"the entrypoint reported exit code {reader.reported_exit}, the engine {exit_code}")

        # A run whose end the host saw only after the time limit overran it, whatever its code:
        # a script that outlived the limit (a fetch refused at the deadline, say) is timed out.
        overran = not killed_for and reader.ended_s is not None and reader.ended_s > limits.timeout_s
        status, message = _decide(
            exit_code, oom, killed_for, engine_error, limits, reader, overran=overran, stopped_for=stop_for
        )
        duration = reader.elapsed()
        reader.emit(RunFinished(run_id=spec.run_id, status=status, exit_code=exit_code, duration_s=duration))
        input_mode = "none" if not mounts else ("copied_read_only" if handle.pooled else "bind_read_only")
        return RunResult(
            run_id=spec.run_id,
            status=status,
            exit_code=exit_code,
            message=message,
            image=self.image,
            pooled=handle.pooled,
            duration_s=duration,
            first_event_s=reader.first_event_s,
            # Seconds from the hand-over; ``wait_s`` only when the engine's exit code was waited for.
            timings={
                **({} if handle.pooled else handle.timings),
                "handover_s": t_handover,
                **({"script_s": reader.ended_s} if reader.ended_s is not None else {}),
                **({"sent_s": reader.sent_s} if reader.sent_s is not None else {}),
                "stream_s": t_stream,
                **({} if trusted else {"wait_s": t_wait - t_stream}),
                "collect_s": duration - t_wait,
            },
            events_count=reader.seq,
            events=tuple(reader.events),
            events_dropped=reader.events_dropped,
            stdout_bytes=reader.stdout_bytes,
            stderr_bytes=reader.stderr_bytes,
            stdout_tail=reader.stdout_tail,
            stderr_tail=reader.stderr_tail,
            output_dir=out_dir,
            artifacts=tuple(collected.artifacts),
            output_warnings=tuple(warnings),
            output_conflicts=tuple(collected.conflicts),
            outputs_partial=collected.partial,
            policy=PolicyReceipt(
                user=SCRIPT_USER,
                supervisor_user=SUPERVISOR_USER,
                cap_add=(*SUPERVISOR_CAPS, *engine_flags(self.engine).cap_add),
                capabilities=_CAPABILITIES,
                ipc="none",
                runtime=handle.runtime,
                engine=self.engine_version,
                seccomp=flags_for(handle.runtime, limits.pids).seccomp,
                input_mode=input_mode,
                env_keys=tuple(sorted(spec.env)),
                egress=spec.egress,
                limits=self._receipt_limits(limits, handle.runtime),
            ),
        )

    def _receipt_limits(self, limits: Limits, runtime: str) -> dict[str, object]:
        """The limits as applied under ``runtime`` on this engine, with how each differs from the common way."""
        applied: dict[str, object] = {**limits.receipt(), **flags_for(runtime, limits.pids).receipt}
        if not engine_flags(self.engine).inodes:
            applied["inodes"] = "not enforced (the engine refuses nr_inodes)"
        return applied

    def _kill(self, cid: str) -> None:
        import docker.errors

        try:
            self.client.api.kill(cid)
        except docker.errors.APIError:
            pass  # already stopped

    def _ask_stop(self, cid: str) -> None:
        """SIGUSR1 to the supervisor (init passes it on; the script cannot send it): stop the script, send /output."""
        import docker.errors

        try:
            self.client.api.kill(cid, signal="SIGUSR1")
        except docker.errors.APIError:
            pass  # already stopped: the run ends as it ends
        except Exception as exc:  # noqa: BLE001 - called from a Ctrl-C helper thread: logged, never raised there
            log.warning("could not ask container %s to stop its script: %s", cid[:12], exc)

    def _answer(
        self,
        raw: socket.socket,
        reader: RunReader,
        request: AgentRequestEvent | FetchRequestEvent,
        handlers: tuple[AgentHandler | None, FetchHandler | None],
        deadline: float,
    ) -> None:
        """Answer one request the script made of the host, on its stdin; the run goes on either way."""
        reply, event = answer_request(request, *handlers, deadline)
        reader.emit(event)
        # A body travels raw after the JSON line (``body_len`` bytes): no base64 for large answers.
        body = reply.pop("body", b"")
        if body:
            reply["body_len"] = len(body)
        try:
            raw.sendall(json.dumps({"id": request.id, **reply}).encode() + b"\n" + body)
        except OSError:
            pass  # the script is gone; its status will say why


_CAPABILITIES = (
    "script (uid 10001): none, in every set (bounding included)",
    "supervisor (uid 0): KILL effective while the script runs; SETUID, SETGID, SETPCAP permitted"
    " (for the output collector)",
    "init (pid 1, uid 0): SETUID, SETGID, SETPCAP, KILL",
)


def _image_from_docker(settings: Settings, target: Any, progress: Progress | None) -> None:
    """Copy the sandbox image into Podman from the local Docker engine (built there first when missing).

    Podman's store is its own; the image is built once, offline, the way Docker builds it. With
    no local Docker engine, Podman builds it itself (``ImageBuilder.ensure`` on its socket).
    """
    import docker
    import docker.errors

    try:
        source = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=300)
        source.ping()
    except docker.errors.DockerException:
        return
    try:
        tag = ImageBuilder(source, settings.model_copy(update={"docker_host": None}), progress).ensure()
        if progress is not None:
            progress(f"copying {tag} from Docker into Podman ...")
        copy_image(source, target, tag)
    finally:
        source.close()


def _report_decides(reader: RunReader) -> bool:
    """True when the supervisor's end report alone may decide the run's status (docs/supervisor.md).

    All of it must have arrived: the stdout report, stderr's end marker (stderr is complete), and
    the trailer (the outputs are complete). The supervisor must have seen every other process
    gone. A script killed by SIGKILL, or a failure with no readable OOM count, is left to the
    engine, which alone says whether the kernel's OOM killer did it.
    """
    code = reader.reported_exit
    if not (reader.sent and reader.stderr_ended and reader.settled) or code is None or not 0 <= code <= 255:
        return False
    if reader.reported_timeout or reader.reported_interrupt:
        # The supervisor's own stop at the time limit or at the host's request (a SIGKILL it
        # sent): trusted when the container's OOM count says the kernel killed nothing.
        return reader.oom_kills == 0
    return code == 0 or (code != SIGKILLED and reader.oom_kills is not None)


def _decide(
    exit_code: int | None,
    oom: bool,
    killed_for: str,
    engine_error: str,
    limits: Limits,
    reader: RunReader,
    *,
    overran: bool = False,
    stopped_for: str = "",
) -> tuple[RunStatus, str]:
    """The host's verdict on a run; nothing the script printed is consulted."""
    if killed_for == "cancelled":
        return "cancelled", "cancelled on request; the container was killed"
    if stopped_for == "interrupted":
        if killed_for:
            return "interrupted", "interrupted; the script did not stop in time, so no outputs were collected"
        kept = "what it had written to /output is kept (partial)" if reader.sent else "no outputs were sent"
        return "interrupted", f"interrupted: the script was stopped; {kept}"
    if killed_for == "timeout":
        return "timed_out", f"killed after the {limits.timeout_s:g} s timeout; {_RAISE_TIMEOUT}"
    if (reader.reported_timeout or overran) and not oom:
        kept = "what it had written to /output is kept (partial)" if reader.sent else "no outputs were sent"
        return "timed_out", f"stopped at the {limits.timeout_s:g} s timeout; {kept}; {_RAISE_TIMEOUT}"
    if killed_for == "output" or stopped_for == "output":
        cap = limits.receipt()["stdout_cap"]
        kept = "" if killed_for or not reader.sent else "; what it had written to /output is kept (partial)"
        return "output_limit", f"stopped: stdout and stderr passed the {cap} cap{kept}"
    if oom:
        return "oom_killed", f"killed by the kernel: out of memory (limit {limits.receipt()['memory']})"
    if engine_error:
        return "error", engine_error
    if exit_code == 0:
        return "succeeded", "exited with code 0"
    if killed_for == "archive":
        return "failed", "outputs exceeded the collection cap"
    tail = reader.stderr_tail.strip().splitlines()
    last = f": {tail[-1][:200]}" if tail else ""
    return "failed", f"exited with code {exit_code}{last}"


def _api_text(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()
