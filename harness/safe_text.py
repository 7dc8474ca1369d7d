"""Text that came out of a container or an LLM, made safe to print on a terminal.

Scripts, their output, their events and LLM replies are hostile input for the terminal that
shows them: ``ESC[2K ESC[1G`` erases a line and writes another over it, OSC sequences set the
window title or the clipboard (OSC 52), a carriage return or backspaces overwrite what was
just printed, and bidirectional overrides reorder it. A reviewer would then read something
other than what runs. ``visible`` renders every such character as a visible escape
(``\\x1b``, ``\\r``, ``\\x08``, ``\\u202e``) so that what is printed is what is there, and
leaves every other character, including tabs and non-Latin text, alone.

What is escaped: the C0 and C1 control characters and DEL (Unicode category Cc) except tab
(and newline in the per-line form); format characters (Cf: bidi embeddings, overrides and
isolates, zero-width characters, invisible tag characters); lone surrogates (Cs, which no
terminal encoding can carry); and the line and paragraph separators (Zl, Zp). Rich markup is
not this module's business: print the result with ``markup=False`` or inside a ``Text``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["visible", "visible_lines"]

# Everything outside printable ASCII is a candidate; the category decides (a fast path for ASCII).
_CANDIDATE = re.compile(r"[^\t\x20-\x7e]")
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    return _escape(char) if unicodedata.category(char) in _HIDDEN else char


def _line(text: str) -> str:
    return _CANDIDATE.sub(_replace, text)


def visible_lines(text: str) -> list[str]:
    """``text`` as lines a terminal shows as written: control and invisible characters escaped.

    Lines end where Python ends them: at ``\\n``, ``\\r\\n`` and a lone ``\\r``. A lone
    carriage return stays visible as ``\\r`` at the end of its line, because on a terminal it
    would let the next line overwrite this one, and Python reads it as a line break.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    for line in lines:
        parts = line.split("\r")
        out.extend(_line(part) + "\\r" for part in parts[:-1])
        out.append(_line(parts[-1]))
    return out


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` with every control and invisible character shown as an escape such as ``\\x1b``.

    One line by default (newlines show as ``\\n``); with ``lines=True`` the line breaks are
    kept as ``\\n`` characters (see ``visible_lines``).
    """
    if lines:
        return "\n".join(visible_lines(text))
    return _line(text)
