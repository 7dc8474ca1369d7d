"""The second opinions: RestrictedPython, bandit, and the secret scan."""

from __future__ import annotations

import ast

import pytest

from harness.checks import run_checks
from harness.checks.bandit_check import check_bandit
from harness.checks.restricted import check_restricted
from harness.checks.secrets import check_secrets


def by(source: str, checker: str, policy: str = "strict") -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in run_checks(source, policy).findings if f.checker == checker]


# -- RestrictedPython ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "strict", "standard"),
    [
        ("eval('1')", ("HR201", "error"), ("HR201", "error")),
        ("def g():\n    yield\nx = g().gi_frame", ("HR203", "error"), ("HR203", "warning")),
        ("x = (1).__mro__", ("HR202", "warning"), ("HR202", "info")),
        ("x = (1).__class__", ("HR202", "info"), ("HR202", "info")),  # type(x): the AST policy judges it
        ("def _helper():\n    return 1", ("HR202", "info"), ("HR202", "info")),
        ("class A:\n    def __init__(self):\n        super().__init__()", ("HR202", "info"), ("HR202", "info")),
        ("async def main():\n    return 1", ("HR204", "info"), ("HR204", "info")),
        ("class A:\n    n = 0\nA.n += 1", ("HR204", "info"), ("HR204", "info")),
        ("from os import *", ("HR204", "warning"), ("HR204", "warning")),
    ],
)
def test_restricted_python_is_graded_per_policy(
    source: str, strict: tuple[str, str], standard: tuple[str, str]
) -> None:
    assert strict in by(source, "restricted", "strict")
    assert standard in by(source, "restricted", "standard")


def test_restricted_python_alone_reports_lines() -> None:
    findings = check_restricted(ast.parse("x = 1\nexec('y')\n"), strict=True)
    assert [(f.code, f.line, f.severity) for f in findings] == [("HR201", 2, "error")]
    assert findings[0].message.startswith("RestrictedPython: ")
    assert check_restricted(ast.parse("x = [1, 2]\n")) == []


# -- bandit ----------------------------------------------------------------------------------------
def test_bandit_runs_on_the_parsed_tree_and_is_graded() -> None:
    source = (
        "import hashlib\nimport tarfile\nimport sqlite3\n"
        "digest = hashlib.md5(b'x').hexdigest()\n"
        "tarfile.open('/input/a.tar').extractall('/tmp/x')\n"
        "def q(db, table):\n    return db.execute('SELECT * FROM ' + table)\n"
        "try:\n    pass\nexcept Exception:\n    pass\n"
    )
    found = {f.code: f for f in check_bandit(ast.parse(source), source)}
    assert found["HB324"].severity == "warning" and "usedforsecurity" in found["HB324"].hint
    assert found["HB202"].severity == "warning" and "members=" in found["HB202"].hint
    assert found["HB608"].severity == "warning"
    assert found["HB110"].severity == "info"
    assert all(f.checker == "bandit" and f.line >= 1 for f in found.values())


def test_bandit_high_severity_is_an_error() -> None:
    source = "import subprocess\ndef run(cmd):\n    subprocess.run(cmd, shell=True)\n"
    assert ("HB602", "error") in by(source, "bandit")


def test_bandit_ignores_nosec_comments() -> None:
    source = "import hashlib\nhashlib.md5(b'x')  # nosec\n"
    assert ("HB324", "warning") in by(source, "bandit")


def test_bandit_results_do_not_leak_between_scripts() -> None:
    assert by("eval('1')", "bandit")
    assert by("x = 1", "bandit") == []


# -- secrets ---------------------------------------------------------------------------------------
SECRETS = [
    ("HK401", "KEY = '''-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----'''"),
    ("HK401", "k = '-----BEGIN OPENSSH PRIVATE KEY-----'"),
    ("HK402", "aws = 'AKIAIOSFODNN7EXAMPLE'"),
    ("HK403", "key = 'sk-ant-api03-" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z" + "'"),
    ("HK403", "key = 'sk-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv12" + "'"),
    ("HK404", "t = 'ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" + "'"),
    ("HK405", "# webhook: https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("HK406", "password = 'Tr0ub4dor&3-horse-battery'"),
    ("HK406", "config = {'client_secret': 'f9Kd02LmZq81VbNx'}"),
    ("HK406", "if token == 'Zk39fLq02NvB77xw':\n    pass"),
    ("HK407", "stripe = 'sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" + "'"),
]
NOT_SECRETS = [
    "password = os.environ.get('DB_PASSWORD', '')",
    "password = 'changeme'",
    "api_key = '<your-api-key>'",
    "token = '${API_TOKEN}'",
    "TOKEN_ENV = 'HARNESS_API_TOKEN'",
    "secret = os.environ['API_SECRET']",
    "token_file = '/input/token.txt'",
    "password_prompt = 'Enter your password: '",
    "auth_token = 'bearer'",
    "api_key = 'xxxxxxxxxxxxxxxx'",
    "sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
    "token_pattern = r'[A-Za-z0-9_]+'",
    "password = 'password'",
    "def f(token=None):\n    return token",
    "message = 'the task-runner skipped 3 files'",
]


@pytest.mark.parametrize(("code", "source"), SECRETS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(SECRETS)])
def test_secrets_are_found(code: str, source: str) -> None:
    report = run_checks("import os\n" + source + "\n")
    assert (code, "error") in [(f.code, f.severity) for f in report.findings if f.checker == "secrets"]
    assert not report.passed


@pytest.mark.parametrize("source", NOT_SECRETS)
def test_near_misses_are_not_secrets(source: str) -> None:
    report = run_checks("import os\n" + source + "\n")
    assert [f.one_line() for f in report.findings if f.checker == "secrets"] == []


def test_secret_findings_are_located_once_per_line() -> None:
    text = "import os\n\nkey = 'AKIAIOSFODNN7EXAMPLE'  # AKIAIOSFODNN7EXAMPLE again\n"
    findings = check_secrets(text, ast.parse(text))
    assert [(f.code, f.line, f.col) for f in findings] == [("HK402", 3, 7)]
    assert "os.environ" in findings[0].hint


def test_secrets_are_found_in_text_that_does_not_parse() -> None:
    report = run_checks("key = 'AKIAIOSFODNN7EXAMPLE'\ndef broken(:\n")
    assert {"HS001", "HK402"} <= {f.code for f in report.findings}
    assert "secrets" in report.checkers_run and "policy" not in report.checkers_run
