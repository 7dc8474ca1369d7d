"""What a script can see and do from inside the container: each security default, verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.execution.docker import DockerBackend
from harness.records import RunResult, RunSpec

PROBE = r"""
import ctypes, json, os, resource, socket, errno

def try_write(path):
    try:
        with open(path, "w") as fh:
            fh.write("x")
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
net = sorted(os.listdir("/sys/class/net"))
routes = [l for l in open("/proc/net/route").read().splitlines()[1:] if l.strip()]
try:
    s = socket.create_connection(("1.1.1.1", 53), timeout=2)
    egress = "connected"
except OSError as exc:
    egress = type(exc).__name__ + ":" + str(exc.errno)
# From the kernel the script talks to (gVisor has no /proc/self/limits, nor NoNewPrivs in status).
limits = {
    "nofile": str(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
    "fsize": str(resource.getrlimit(resource.RLIMIT_FSIZE)[1]),
}
# Mount options as the kernel reports them: "ro" is the read-only flag itself, whoever asks.
mounts = {l.split()[4]: l.split()[5].split(",") for l in open("/proc/self/mountinfo")}
no_new_privs = str(ctypes.CDLL(None, use_errno=True).prctl(39, 0, 0, 0, 0))  # PR_GET_NO_NEW_PRIVS
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
    "caps": {k: v.strip() for k, v in status.items() if k.startswith("Cap")},
    "no_new_privs": no_new_privs, "seccomp": status["Seccomp"].strip(),
    "net": net, "routes": routes, "egress": egress,
    "root_write": try_write("/etc/harness-probe"), "usr_write": try_write("/usr/lib/probe"),
    "input_write": try_write("/input/data/new.txt"), "input_overwrite": try_write("/input/data/hello.txt"),
    "input_read": open("/input/data/hello.txt").read(),
    "tmp_write": try_write("/tmp/probe"), "output_write": try_write("/output/probe"),
    "work_write": try_write("/work/probe"),
    "shm": os.path.exists("/dev/shm"), "shm_write": try_write("/dev/shm/probe"),
    "shm_entries": os.listdir("/dev/shm") if os.path.isdir("/dev/shm") else None,
    "env": dict(os.environ),
    "pid1": open("/proc/1/cmdline").read().replace("\0", " "),
    "docker_sock": os.path.exists("/var/run/docker.sock"),
    "limits": limits,
    "root_ro": "ro" in mounts.get("/", []), "input_ro": "ro" in mounts.get("/input/data", []),
    "hostname": socket.gethostname(),
}))
"""


def _probe(backend: DockerBackend, tmp_path: Path) -> dict:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from the host")
    result = backend.run(RunSpec(script=PROBE, inputs=(data,), output_dir=tmp_path / "out", env={"GREETING": "hi"}))
    assert result.status == "succeeded", (result.message, result.stderr_tail)
    return json.loads(result.stdout_tail.strip().splitlines()[-1]) | {"_result": result}


@pytest.fixture(params=["cold", "pooled"])
def probe(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-must-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    backend = request.getfixturevalue("backend" if request.param == "cold" else "pooled")
    if request.param == "pooled":
        assert backend.wait_pool(60)
    info = _probe(backend, tmp_path)
    assert info["_result"].pooled is (request.param == "pooled")
    return info


def test_runs_as_non_root_without_capabilities(probe: dict, sandbox_runtime: str) -> None:
    assert probe["uid"] == 10001 and probe["euid"] == 10001 and probe["gid"] == 10001
    # gVisor's kernel has no ambient set to show.
    expected = {"CapInh", "CapPrm", "CapEff", "CapBnd"} | ({"CapAmb"} if sandbox_runtime == "runc" else set())
    assert set(probe["caps"]) == expected
    assert all(int(v, 16) == 0 for v in probe["caps"].values()), probe["caps"]
    assert probe["no_new_privs"] == "1"
    if sandbox_runtime == "runc":
        assert probe["seccomp"] == "2"  # the engine's default seccomp filter is on
    else:
        # gVisor implements the system calls itself: the engine's filter is not applied inside,
        # gVisor's own filter confines its kernel on the host. The receipt says so.
        assert probe["seccomp"] == "0"
        assert "gVisor" in probe["_result"].policy.seccomp


def test_no_network_but_loopback(probe: dict) -> None:
    assert probe["net"] == ["lo"]
    assert probe["routes"] == []
    assert probe["egress"].startswith("OSError") or "101" in probe["egress"]


def test_filesystem_is_read_only_except_scratch_and_output(probe: dict, sandbox_runtime: str) -> None:
    assert probe["root_ro"]
    # gVisor checks permissions before the read-only flag: a non-root writer hears EACCES there.
    refused = ("EROFS",) if sandbox_runtime == "runc" else ("EROFS", "EACCES")
    assert probe["root_write"] in refused
    assert probe["usr_write"] in refused
    assert probe["tmp_write"] == "ok"
    assert probe["work_write"] == "ok"
    assert probe["output_write"] == "ok"
    assert probe["input_read"] == "hello from the host"
    # Bind-mounted inputs are read-only mounts; copied inputs (pooled) are read-only files.
    assert probe["input_write"] in ("EROFS", "EACCES")
    assert probe["input_overwrite"] in ("EROFS", "EACCES")


def test_input_is_a_read_only_mount_on_cold_runs(tmp_path: Path, backend: DockerBackend, sandbox_runtime: str) -> None:
    info = _probe(backend, tmp_path)
    assert info["input_ro"]
    assert info["input_write"] in (("EROFS",) if sandbox_runtime == "runc" else ("EROFS", "EACCES"))
    assert info["_result"].policy.input_mode == "bind_read_only"


def test_environment_holds_only_what_the_run_declares(probe: dict) -> None:
    env = probe["env"]
    assert env["GREETING"] == "hi"
    assert "ANTHROPIC_API_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    leaked = [k for k, v in env.items() if "sk-ant" in v or "host-secret" in v]
    assert not leaked
    allowed = {
        "GREETING",
        "PATH",
        "HOME",
        "LANG",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PYTHONPATH",
        "PYTHONSAFEPATH",
        "HARNESS_REPLY_FD",
        "HARNESS_INPUT",
        "HARNESS_OUTPUT",
    }
    assert set(env) <= allowed


def test_init_no_shm_ulimits_and_no_engine_socket(probe: dict, sandbox_runtime: str) -> None:
    assert "docker-init" in probe["pid1"] or "tini" in probe["pid1"]
    if sandbox_runtime == "runc":
        assert probe["shm"] is False  # ipc none: no writable /dev/shm (Docker gives 64 MB for size 0)
    else:
        # gVisor makes its own /dev/shm whatever --ipc says: an empty read-only tmpfs covers it.
        assert probe["shm_entries"] == []
    assert probe["shm_write"] in ("ENOENT", "EROFS")
    assert probe["limits"] == {"nofile": "1024", "fsize": str(256 * 1024 * 1024)}
    assert probe["docker_sock"] is False
    assert probe["hostname"] == "sandbox"


def test_policy_receipt_lists_what_was_applied(probe: dict, sandbox_runtime: str) -> None:
    result: RunResult = probe["_result"]
    receipt = result.policy
    assert receipt.network == "none" and receipt.read_only_rootfs and receipt.no_new_privileges
    assert receipt.cap_drop == ("ALL",) and receipt.user == "10001:10001" and receipt.init
    # Exactly what is granted, to whom: the engine's grant goes to the supervisor, none to the script.
    assert receipt.supervisor_user == "0:0"
    assert receipt.cap_add == ("SETUID", "SETGID", "SETPCAP", "KILL")
    assert receipt.capabilities[0] == "script (uid 10001): none, in every set (bounding included)"
    assert receipt.ipc == "none" and receipt.limits["inodes"] == 32768
    assert receipt.env_keys == ("GREETING",)
    assert receipt.limits["memory"] == "512m" and receipt.limits["pids"] == 128
    assert receipt.runtime == sandbox_runtime  # read back from the engine


def test_files_written_at_run_time_cannot_shadow_the_standard_library(backend: DockerBackend) -> None:
    script = (
        "import sys\n"
        "open('/work/json.py', 'w').write('raise SystemExit(9)')\n"
        "open('/work/harness_runtime.py', 'w').write('raise SystemExit(8)')\n"
        "import json, harness_runtime\n"
        "print(json.dumps({'ok': True}), harness_runtime.SCHEMA_VERSION)\n"
    )
    result = backend.run(RunSpec(script=script))
    assert result.ok, (result.exit_code, result.stderr_tail)
