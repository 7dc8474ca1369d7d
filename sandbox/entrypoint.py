"""Container entrypoint: receive one job on stdin, run it once, report its end.

Protocol (host -> container, on stdin):
    the run's nonce: NONCE_LEN hex digits and a newline;
    one line of JSON, the job header:
        {"v": 1, "script": str, "name": str, "argv": [str],
         "env": {str: str}, "inputs_size": int, "max_outputs": int}
    then ``inputs_size`` bytes: a tar archive extracted into /input (pooled runs,
    which cannot receive bind mounts once started). Anything after that on stdin
    belongs to the script (answers to agent calls).

Protocol (container -> host, on stdout): first, once the interpreter is up,
    {"v": 1, "kind": "_harness_ready"}
then, after the script has ended:
    {"v": 1, "kind": "_harness_end", "nonce": str, "exit_code": int}
    then a tar stream of /output until end of file (at most max_outputs + 1 entries,
    when max_outputs is set: the host collects no more).

Everything the script prints comes before the end marker. The host trusts none of
it for the status: the exit code comes from the engine. The container runs the job
exactly once and exits; it is never reused.

The script must not be able to write the end marker itself (its later output would then
pass as the output archive). So the nonce is read straight from fd 0 into one bytearray
(no other copy exists in this process), that bytearray is zeroed in the child before the
script runs, and this process makes itself non-dumpable, so the script (same uid) cannot
read it back through /proc/<pid>/mem, process_vm_readv or ptrace.

The script runs in a forked child of this (already started) interpreter, which
saves a second interpreter start-up on every run. Standard library only.
"""

from __future__ import annotations

import json
import os
import pkgutil  # noqa: F401 - runpy imports it lazily; load it before the job arrives, not after
import runpy
import signal
import stat
import sys
import tarfile
import traceback

WORK_DIR = "/work"
INPUT_DIR = "/input"
OUTPUT_DIR = "/output"
RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
MAX_HEADER = 16 * 1024 * 1024
NONCE_LEN = 32
PR_SET_DUMPABLE = 4
READY = b'{"v": 1, "kind": "_harness_ready"}\n'
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORK_DIR,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONPATH": RUNTIME_DIR,
    "HARNESS_INPUT": INPUT_DIR,
    "HARNESS_OUTPUT": OUTPUT_DIR,
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


def _set_dumpable(on: bool) -> None:
    """Non-dumpable keeps processes of the same uid (the script) out of this one's memory."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, int(on), 0, 0, 0) != 0:
        raise SystemExit(_fail(f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}"))


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
    # The host's files are never reachable from here (this is a copy); marking the copy
    # read-only keeps scripts honest about /input being input only.
    for root, dirs, files in os.walk(INPUT_DIR):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o555)


def _run_child(path: str, argv: list[str], env: dict[str, str]) -> None:
    """Run the script in this (forked) process; never returns."""
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(WORK_DIR)
        sys.argv = [path, *argv]
        # The standard library and the runtime come first: a file the script writes into its
        # working directory at run time (say /work/json.py) must not shadow them.
        sys.path[:] = [RUNTIME_DIR, *[p for p in sys.path if p not in ("", RUNTIME_DIR, WORK_DIR)], WORK_DIR]
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
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    os._exit(code)


def _send_outputs(nonce: bytearray, exit_code: int, max_outputs: int) -> None:
    marker = {"v": 1, "kind": "_harness_end", "nonce": nonce[:NONCE_LEN].decode("ascii"), "exit_code": exit_code}
    # The leading newline ends any partial line the script left, so the marker starts a line.
    os.write(1, ("\n" + json.dumps(marker) + "\n").encode())
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


def main() -> int:
    """Read the job, run the script in a child, then send its outputs; return its exit code."""
    reader = _StdinReader()
    _set_dumpable(False)
    # Tell the host this interpreter is up and waiting, so a pooled container is handed out
    # only once it can take its job at once.
    os.write(1, READY)
    nonce = _read_nonce()
    try:
        job = reader.header()
    except ValueError:
        return _fail("job header is not valid JSON")
    name = os.path.basename(str(job.get("name") or "main.py")) or "main.py"
    path = os.path.join(WORK_DIR, name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(str(job["script"]))
    if int(job.get("inputs_size") or 0) > 0:
        _extract_inputs(reader, int(job["inputs_size"]))
    env = {**BASE_ENV, **{str(k): str(v) for k, v in dict(job.get("env") or {}).items()}}
    argv = [str(a) for a in job.get("argv") or []]

    pid = os.fork()
    if pid == 0:
        nonce[:] = bytes(len(nonce))  # in place: the child's copy of the page is wiped
        # The script's own /proc entries stay its own (a non-dumpable process's belong to root).
        _set_dumpable(True)
        _run_child(path, argv, env)
    _, status = os.waitpid(pid, 0)
    exit_code = os.waitstatus_to_exitcode(status)
    if exit_code < 0:
        exit_code = 128 - exit_code
    # Stop whatever the script left running (daemons, children) so nothing else can write
    # to stdout while the outputs travel; init (pid 1) and this process are spared.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    _send_outputs(nonce, exit_code, int(job.get("max_outputs") or 0))
    return exit_code


if __name__ == "__main__":
    code = main()
    # Skip interpreter teardown: the outputs are written and flushed, and the container's end
    # is on the caller's critical path.
    os._exit(code)
