"""The thin client's promises: the CLI's exit codes by class name, and a start-up without heavy modules."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness.errors
from harness.cli import EXIT_CODES, exit_code_for
from harness.client.exit_codes import EXIT_CODES_BY_NAME
from tests.contract_server import ContractServer

HEAVY = ("pydantic", "docker", "jinja2", "bandit", "celery", "rich", "typer", "anthropic", "fastapi")


def test_exit_codes_by_name_match_the_cli_table() -> None:
    classes = [
        c for c in vars(harness.errors).values() if inspect.isclass(c) and issubclass(c, harness.errors.HarnessError)
    ]
    # Every error class, by name, exits as the CLI would exit for an instance of it.
    assert EXIT_CODES_BY_NAME == {c.__name__: exit_code_for(c.__new__(c)) for c in classes}
    assert set(EXIT_CODES) <= set(classes)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ContractServer]:
    srv = ContractServer(tmp_path / "h.sock")
    yield srv
    srv.close()


def _loaded_after(code: str, env: dict[str, str]) -> tuple[list[str], str, str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    *_, last = done.stderr.strip().splitlines()
    return json.loads(last), done.stdout, done.stderr


def test_import_harness_loads_nothing_heavy() -> None:
    loaded, _, _ = _loaded_after("import harness", dict(os.environ))
    assert loaded == []


def test_the_client_path_loads_nothing_heavy(server: ContractServer, tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("import json\nprint(json.dumps({'a': 1}))\n")
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}"}
    loaded, out, err = _loaded_after(f"from harness.cli import main\nmain(['check', {str(script)!r}])", env)
    assert "ok.py: gate passed under the strict policy" in out, err
    assert any(path == "/v1/check" for _, path, _ in server.requests_seen)  # it went through the server
    assert loaded == []


def test_no_server_means_the_in_process_cli(tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("x = 1\n")
    env = {**os.environ, "HARNESS_URL": f"unix://{tmp_path}/none.sock"}
    loaded, out, _ = _loaded_after(f"from harness.cli import main\nmain(['check', {str(script)!r}])", env)
    assert "gate passed" in out and "typer" in loaded


def test_a_draining_or_schema_refusing_server_hands_the_command_to_the_in_process_cli(
    server: ContractServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    script = tmp_path / "ok.py"
    script.write_text("x = 1\n")
    monkeypatch.setenv("HARNESS_URL", f"unix://{server.path}")
    server.draining = True
    assert main(["check", str(script)]) == 0
    assert "ok.py: gate passed" in capsys.readouterr().out
    server.draining = False
    assert main(["check", str(script), "--policy", "lax"]) == 2  # the server's schema refuses it
    assert capsys.readouterr().err == "Error: unknown gate policy 'lax': use one of: strict, standard\n"
    assert [path for _, path, _ in server.requests_seen] == ["/v1/check", "/v1/check"]
