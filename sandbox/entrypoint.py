"""Container supervisor: receive one job on stdin, run it once as another user, report its end.

The full design (uids, capabilities, file descriptors, deadlines, other runtimes) is in
docs/supervisor.md; this docstring is the wire protocol.

Invocation: ``entrypoint.py [--idle-timeout SECONDS]``; with no job by then, it exits.

Protocol (host -> container, on stdin):
    the run's nonce: NONCE_LEN hex digits and a newline;
    one line of JSON, the job header:
        {"v": 1, "script": str, "name": str, "argv": [str],
         "env": {str: str}, "inputs_size": int, "deadline_s": float, "max_outputs": int,
         "memory_limit": int}
    then ``inputs_size`` bytes: a tar archive extracted into /input (pooled runs,
    which cannot receive bind mounts once started). Anything after that on stdin is
    the host's answers to agent and fetch calls: this process forwards it, byte for byte,
    to the script's reply pipe (fd REPLY_FD, named in $HARNESS_REPLY_FD). The script's own
    stdin is /dev/null.

Protocol (container -> host, on stdout): first, once the interpreter is up,
    {"v": 1, "kind": "_harness_ready"}
then, after the script has ended and no other process is left alive:
    {"v": 1, "kind": "_harness_end", "nonce": str, "exit_code": int,
     "settled": bool, "timed_out": bool, "interrupted": bool, "oom_kills": int | null}
    then a tar stream of /output (at most max_outputs + 1 entries, when max_outputs is
    set: the host collects no more), then, once the tar is sent in full,
    {"v": 1, "kind": "_harness_sent", "nonce": str}
and on stderr, just before the stdout marker, a line with the same first fields
    {"v": 1, "kind": "_harness_end", "nonce": str, "stream": "stderr"}
(stdout and stderr reach the host as separate streams: this tells it stderr is complete).

Everything the script prints comes before the end markers. The host trusts none of it
for the status: the exit code comes from this process (its end report, which the script
cannot forge: it never learns the nonce) or from the engine. ``settled`` says every other
process was gone when the report was written; ``oom_kills`` is the container's memory
cgroup's OOM-kill count at that moment (null when unreadable). The container runs the job
exactly once and exits; it is never reused. SIGUSR1 (which only the engine, through init,
can send: the script may not signal this process) asks for the script to be stopped now; its
/output is still sent and the report says ``interrupted`` (the host's Ctrl-C and output cap).
``deadline_s`` seconds after the header
arrived, this process kills the script and exits without an end marker, so a run whose
host died ends anyway.

Users: this process (and init) run as uid 0 holding only CAP_SETUID, CAP_SETGID, CAP_SETPCAP
and CAP_KILL (of which only CAP_KILL is effective while the script runs); the script runs as
SCRIPT_UID with no capabilities at all. So the script can
neither signal nor trace this process or init, nor read their memory or /proc files.
The nonce is read straight from fd 0 into one bytearray (no other copy exists in this
process), zeroed in every child, and this process is non-dumpable.

The script runs in a forked child of this (already started) interpreter, which
saves a second interpreter start-up on every run. Standard library only.
"""

from __future__ import annotations

import ctypes
import json
import os
import pkgutil  # noqa: F401 - runpy imports it lazily; load it before the job arrives, not after
import runpy
import signal
import stat
import sys
import tarfile
import threading
import time
import traceback

WORK_DIR = "/work"
INPUT_DIR = "/input"
OUTPUT_DIR = "/output"
RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
MAX_HEADER = 16 * 1024 * 1024
NONCE_LEN = 32
SCRIPT_UID = 10001
SCRIPT_GID = 10001
REPLY_FD = 3
IDLE_TIMEOUT_S = 600
SEND_TIMEOUT_S = 300  # collecting /output after the script ended; nobody reading means nobody waits
SETTLE_TIMEOUT_S = 2.0  # killed processes normally vanish in microseconds; past this the report says so
DEADLINE_EXIT = 124
PR_SET_DUMPABLE = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
SUPERVISOR_CAPS = (1 << CAP_KILL) | (1 << CAP_SETGID) | (1 << CAP_SETUID) | (1 << CAP_SETPCAP)
PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
# Directories a script can write to: none of them may be on its import path.
WRITABLE_DIRS = (WORK_DIR, "/tmp", OUTPUT_DIR, INPUT_DIR, "/dev/shm")
READY = b'{"v": 1, "kind": "_harness_ready"}\n'
# The container's own memory cgroup (Docker mounts it at the root of /sys/fs/cgroup): v2, v1.
CGROUP_MEMORY = (
    ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory.max"),
    ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORK_DIR,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    # Interpreters the script starts do not put their script's folder or cwd on sys.path either.
    "PYTHONSAFEPATH": "1",
    "PYTHONPATH": RUNTIME_DIR,
    "HARNESS_INPUT": INPUT_DIR,
    "HARNESS_OUTPUT": OUTPUT_DIR,
    "HARNESS_REPLY_FD": str(REPLY_FD),
}


class _StdinReader:
    """Exact-length reads from fd 0 with no read-ahead past what we were told to take."""

    def __init__(self) -> None:
        self.pending = b""
        self.remaining = 0

    def header(self) -> dict:
        buf = self.pending
        while b"\n" not in buf:
            chunk = os.read(0, 65536)
            if not chunk:
                raise SystemExit(_fail("stdin closed before the job header arrived"))
            buf += chunk
            if len(buf) > MAX_HEADER:
                raise SystemExit(_fail("job header too large"))
        line, _, self.pending = buf.partition(b"\n")
        return json.loads(line)

    def read(self, size: int = -1) -> bytes:
        # tarfile's stream mode reads in blocks; never return more than the job carries.
        if self.remaining <= 0:
            return b""
        want = self.remaining if size < 0 else min(size, self.remaining)
        if self.pending:
            data, self.pending = self.pending[:want], self.pending[want:]
        else:
            data = os.read(0, want)
        self.remaining -= len(data)
        return data


def _read_nonce() -> bytearray:
    """The nonce line, read into a bytearray with no intermediate bytes objects."""
    nonce = bytearray(NONCE_LEN + 1)
    view = memoryview(nonce)
    got = 0
    while got < len(nonce):
        n = os.readv(0, [view[got:]])
        if n == 0:
            raise SystemExit(_fail("stdin closed before the nonce arrived"))
        got += n
    view.release()
    if nonce[-1:] != b"\n":
        raise SystemExit(_fail("malformed nonce line"))
    return nonce


_libc = ctypes.CDLL(None, use_errno=True)


def _set_dumpable(on: bool) -> None:
    """Non-dumpable keeps other processes out of this one's memory and /proc files."""
    if _libc.prctl(PR_SET_DUMPABLE, int(on), 0, 0, 0) != 0:
        raise SystemExit(_fail(f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}"))


def _set_effective(caps: int) -> None:
    """Make ``caps`` (a bit mask) this process's effective capabilities; the permitted set stays.

    While the script runs only CAP_KILL is effective (the deadline kills processes of another
    uid). CAP_SETUID and CAP_SETGID stay permitted, not effective: the end of the run needs them
    once more, to send /output from a child under the script's uid (this process may not read
    the script's files). They cannot be dropped earlier and taken back later, and nothing else
    would hold them: a process that keeps them must survive the kill of everything else.
    """

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    if os.getuid() != 0:
        return  # started as the script's user by another runtime set-up: nothing to change
    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)(Data(caps, SUPERVISOR_CAPS, 0), Data(0, 0, 0))
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise SystemExit(_fail(f"capset failed: errno {ctypes.get_errno()}"))


def _become_script_user() -> None:
    """Switch this (child) process to the script's uid and gid, with no capabilities left."""
    if os.getuid() == 0:
        # Empty the bounding set too, so the script holds no capability in any set.
        for cap in range(64):
            if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
                os.write(2, f"harness entrypoint: PR_CAPBSET_DROP({cap}) failed\n".encode())
                os._exit(125)
        os.setgroups([])
        os.setresgid(SCRIPT_GID, SCRIPT_GID, SCRIPT_GID)
        # From uid 0 to all-non-zero ids: the kernel clears the permitted, effective and ambient sets.
        os.setresuid(SCRIPT_UID, SCRIPT_UID, SCRIPT_UID)
    with open("/proc/self/status", encoding="ascii") as fh:
        caps = {k: v.strip() for k, _, v in (line.partition(":") for line in fh) if k.startswith("Cap")}
    if any(int(v, 16) for v in caps.values()):
        os.write(2, f"harness entrypoint: the script would keep capabilities {caps}\n".encode())
        os._exit(125)


def _fail(message: str) -> int:
    os.write(2, f"harness entrypoint: {message}\n".encode())
    return 125


def _extract_inputs(reader: _StdinReader, size: int) -> None:
    reader.remaining = size
    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            name = os.path.normpath(member.name)
            if name.startswith(("/", "..")) or not (member.isfile() or member.isdir()):
                continue
            tar.extract(member, INPUT_DIR, set_attrs=False)
    while reader.read(65536):
        pass
    # The host's files are never reachable from here (this is a copy, owned by this process's
    # uid, so the script cannot change it); read-only modes say so to the script too.
    for root, dirs, files in os.walk(INPUT_DIR):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o555)


def _import_path(path: list[str]) -> list[str]:
    """``path`` without anything the script can write to: a module it drops there is never imported."""

    def writable(entry: str) -> bool:
        real = os.path.realpath(entry)
        inside = any(real == d or real.startswith(d + "/") for d in WRITABLE_DIRS)
        return inside or os.access(real, os.W_OK)

    return [RUNTIME_DIR, *[p for p in path if p and p != RUNTIME_DIR and not writable(p)]]


def _print_script_traceback(exc: BaseException, path: str) -> None:
    """Print ``exc`` from the first frame in the script's file on: the supervisor's and runpy's are noise."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:
        tb = tb.tb_next
    # No frame of the script (a syntax error): the exception alone says where.
    traceback.print_exception(type(exc), exc, tb)


def _run_child(path: str, script: str, argv: list[str], env: dict[str, str]) -> None:
    """Run the script in this (forked) process; never returns."""
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(WORK_DIR)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(script)
        sys.argv = [path, *argv]
        # The runtime is in the image; scripts need no local modules. A file the script writes at
        # run time (/work/winreg.py, which mimetypes imports lazily) must never be imported.
        sys.path[:] = _import_path(sys.path)
        sys.path_importer_cache.clear()
        sys.dont_write_bytecode = True
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException as exc:
        _print_script_traceback(exc, path)
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    os._exit(code)


def _send_outputs(max_outputs: int) -> None:
    """Write /output as a tar stream to stdout (in a child running as the script's user if need be)."""
    sent = 0
    with os.fdopen(1, "wb", closefd=False) as out, tarfile.open(fileobj=out, mode="w|") as tar:
        for root, dirs, files in os.walk(OUTPUT_DIR):
            if max_outputs and sent > max_outputs:
                # The host collects no more than max_outputs entries; one past it tells it there
                # were more. Sending the rest would only fill the host's archive cap.
                break
            dirs.sort()
            for name in [*dirs, *sorted(files)]:
                full = os.path.join(root, name)
                try:
                    mode = os.lstat(full).st_mode
                except OSError:
                    continue
                # Only regular files, directories and symlinks (which the host refuses and
                # reports) travel; nothing is dereferenced.
                if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
                    if max_outputs and sent > max_outputs:
                        break
                    try:
                        tar.add(full, arcname=os.path.relpath(full, OUTPUT_DIR), recursive=False)
                    except OSError:
                        continue
                    sent += 1


def _readable_by_others(top: str) -> bool:
    """True when every folder under ``top`` is listable and every file readable by "others"."""
    try:
        for root, dirs, files in os.walk(top, onerror=_raise):
            for name in [*dirs, *files]:
                st = os.lstat(os.path.join(root, name))
                need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & need != need:
                    return False
    except OSError:
        return False  # the script closed a folder (even /output itself): its own uid must read it
    return True


def _raise(error: OSError) -> None:
    raise error


def _kill_all() -> None:
    """SIGKILL every process but init and this one (the script's, whatever uid they run under)."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass


def _alive_others() -> list[int]:
    """Pids in this container that have not exited, other than init and this process (zombies have)."""
    me = os.getpid()
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (1, me):
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                # The name in parentheses is the process's to choose: read the state after the last ")".
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone between the listing and the read
        if state not in (b"Z", b"X"):
            alive.append(int(entry))
    return alive


def _settle() -> bool:
    """Kill every other process until none is left running; False if some outlived SETTLE_TIMEOUT_S.

    Once they are all gone, none can write to stdout or stderr after the end report, and every
    OOM kill one of them triggered has been counted (the kernel counts it before the task leaves
    the allocation that triggered it, and a task that has exited has left it).
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        _kill_all()
        if not _alive_others():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)


def _oom_kills(memory_limit: int) -> int | None:
    """The container's OOM-kill count, or None when it cannot be read from the container's own cgroup.

    The limit is checked first, so a mount that shows some other cgroup (the host's root, say) is
    never mistaken for this container's. The kernel keeps it rounded down to whole pages.
    """
    page = os.sysconf("SC_PAGE_SIZE")
    for events, limit_file in CGROUP_MEMORY:
        try:
            with open(limit_file, encoding="ascii") as fh:
                limit = fh.read().strip()
            if (
                memory_limit <= 0
                or not limit.isdigit()
                or int(limit) not in (memory_limit, memory_limit // page * page)
            ):
                continue
            with open(events, encoding="ascii") as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _on_deadline(signum: int, frame: object) -> None:
    """No job in time, or the script ran past its deadline: nobody may be listening, so just end."""
    _kill_all()
    os.write(2, b"harness entrypoint: deadline passed, the run is stopped\n")
    os._exit(DEADLINE_EXIT)


def _forward_replies(target: int) -> None:
    """Copy the host's answers from stdin to the script's reply pipe until either end closes."""
    try:
        while chunk := os.read(0, 1 << 16):
            view = memoryview(chunk)
            while view:
                view = view[os.write(target, view) :]
    except OSError:
        pass  # the script closed its end or exited; its status will say why
    finally:
        os.close(target)


def _fork_as_script_user(nonce: bytearray) -> int:
    """fork(); in the child, the nonce is wiped and the script's uid taken. Returns fork()'s value."""
    pid = os.fork()
    if pid == 0:
        try:
            nonce[:] = bytes(len(nonce))  # in place: the child's copy of the page is wiped
            _become_script_user()
            # A set*uid call made this process non-dumpable; the script's own /proc entries stay its own.
            _set_dumpable(True)
        except BaseException as exc:  # never run anything (or return into the parent's code) half-switched
            os._exit(_fail(f"could not switch to the script's user: {exc!r}"))
    return pid


def _stop_script(pid: int, stopped: threading.Event) -> None:
    """The run's time limit has passed: kill the script (what it started goes in the settle that follows)."""
    stopped.set()
    _kill_script(pid)


class _Interrupt:
    """The host's request (SIGUSR1) to stop the script now and still send /output."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped = False  # the script was killed for it (not merely asked after it had ended)
        self.pid = 0  # the script's process while it runs; 0 before the fork and once it is reaped

    def handle(self, signum: int, frame: object) -> None:
        # Runs in the main thread between two bytecodes; waitpid() resumes after it (PEP 475).
        self.requested = True
        if self.pid:
            self.stop()

    def stop(self) -> None:
        self.stopped = True
        _kill_script(self.pid)


def _kill_script(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _idle_timeout(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--idle-timeout":
        return max(1, int(float(argv[1])))
    return IDLE_TIMEOUT_S


def _own_scratch() -> None:
    """Give the script's uid its folders where the engine could not, then give up CAP_CHOWN.

    Docker mounts /work and /output owned by the script's uid. Podman's tmpfs takes no uid
    option (and keeps the image folder's mode): there the engine grants CAP_CHOWN, used here
    once, before any job arrives, and dropped from every set this process keeps.
    """
    if os.getuid() != 0:
        return
    for path, mode in ((WORK_DIR, 0o700), (OUTPUT_DIR, 0o755)):
        if os.stat(path).st_uid != SCRIPT_UID:
            os.chmod(path, mode)  # still root's: no CAP_FOWNER needed
            os.chown(path, SCRIPT_UID, SCRIPT_GID)
    _set_effective(SUPERVISOR_CAPS)  # permitted becomes exactly SUPERVISOR_CAPS


def main(argv: list[str]) -> int:
    """Read the job, run the script in a child, then send its outputs; return its exit code."""
    reader = _StdinReader()
    try:
        _own_scratch()
    except OSError as exc:
        return _fail(f"could not give the script its folders: {exc!r}")
    _set_dumpable(False)
    signal.signal(signal.SIGALRM, _on_deadline)
    signal.alarm(_idle_timeout(argv))
    # Installed before the ready line: the host only interrupts a run whose container said it was up.
    interrupt = _Interrupt()
    signal.signal(signal.SIGUSR1, interrupt.handle)
    # Tell the host this interpreter is up and waiting, so a pooled container is handed out
    # only once it can take its job at once.
    os.write(1, READY)
    nonce = _read_nonce()
    try:
        job = reader.header()
    except ValueError:
        return _fail("job header is not valid JSON")
    max_outputs = int(job.get("max_outputs") or 0)
    deadline = float(job.get("deadline_s") or 0)
    signal.alarm(max(1, int(deadline + 0.999)) if deadline > 0 else IDLE_TIMEOUT_S)
    name = os.path.basename(str(job.get("name") or "main.py")) or "main.py"
    path = os.path.join(WORK_DIR, name)
    if int(job.get("inputs_size") or 0) > 0:
        _extract_inputs(reader, int(job["inputs_size"]))
    env = {**BASE_ENV, **{str(k): str(v) for k, v in dict(job.get("env") or {}).items()}}
    argv = [str(a) for a in job.get("argv") or []]
    replies_r, replies_w = os.pipe()

    pid = _fork_as_script_user(nonce)
    if pid == 0:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        os.close(replies_w)
        os.dup2(replies_r, REPLY_FD)
        if replies_r != REPLY_FD:
            os.close(replies_r)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        _run_child(path, str(job["script"]), argv, env)
    # replies_r stays open here too: an answer that arrives after the script ended then fills
    # the pipe (the copy blocks, harmlessly) instead of raising SIGPIPE while /output travels.
    _set_effective(1 << CAP_KILL)
    interrupt.pid = pid
    if interrupt.requested:
        interrupt.stop()  # asked before the script existed: it is stopped at once
    threading.Thread(target=_forward_replies, args=(replies_w,), daemon=True).start()
    # The run's time limit is enforced here first, so that what the script already wrote to
    # /output is still sent (a tmpfs the engine cannot copy out once the container is killed);
    # the host's own kill, a little later, is the backstop.
    timeout_s = float(job.get("timeout_s") or 0)
    stopped = threading.Event()
    timer = None
    if timeout_s > 0:
        timer = threading.Timer(timeout_s, _stop_script, args=(pid, stopped))
        timer.daemon = True
        timer.start()
    _, status = os.waitpid(pid, 0)
    interrupt.pid = 0  # reaped: the pid may be reused, never signal it again
    if timer is not None:
        timer.cancel()
    exit_code = os.waitstatus_to_exitcode(status)
    if exit_code < 0:
        exit_code = 128 - exit_code
    signal.alarm(SEND_TIMEOUT_S)
    # Stop whatever the script left running (daemons, children) so nothing else can write
    # to stdout or stderr after the end report; init (pid 1) and this process are spared.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    settled = _settle()
    text = nonce[:NONCE_LEN].decode("ascii")
    report = {"v": 1, "kind": "_harness_end", "nonce": text, "exit_code": exit_code, "settled": settled}
    report["timed_out"] = stopped.is_set()
    report["interrupted"] = interrupt.stopped
    report["oom_kills"] = _oom_kills(int(job.get("memory_limit") or 0)) if settled else None
    # The leading newlines end any partial line the script left, so each marker starts a line.
    # stderr first: once the host has the stdout report, stderr is complete too.
    err_marker = {"v": 1, "kind": "_harness_end", "nonce": text, "stream": "stderr"}
    os.write(2, ("\n" + json.dumps(err_marker) + "\n").encode())
    os.write(1, ("\n" + json.dumps(report) + "\n").encode())
    # /output holds the script's files with the script's modes. This process (no CAP_DAC_*)
    # reads them only where "others" may; if the script made anything private, a child under
    # the script's uid sends them instead. Nothing of the script is left running to change
    # the modes in between. The fork is skipped in the common case, for speed.
    if _readable_by_others(OUTPUT_DIR):
        _send_outputs(max_outputs)
    else:
        _set_effective(SUPERVISOR_CAPS)
        collector = _fork_as_script_user(nonce)
        if collector == 0:
            _send_outputs(max_outputs)
            os._exit(0)
        _, status = os.waitpid(collector, 0)
        if status != 0:
            return exit_code  # the outputs may be cut short: no trailer, so the host asks the engine
    # Only after the whole tar: the host may then stop reading, and leave the container's exit
    # and removal to the engine in the background.
    os.write(1, (json.dumps({"v": 1, "kind": "_harness_sent", "nonce": text}) + "\n").encode())
    return exit_code


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Skip interpreter teardown: the outputs are written and flushed, and the container's end
    # is on the caller's critical path.
    os._exit(code)
