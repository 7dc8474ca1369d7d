"""Small, dependency-free text handling shared by request analysis: tokens and light stemming."""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "stem", "tokens"]

STOPWORDS = frozenset(
    """a an and are as at be by can could do does each every for from have how i in into is it its me my of on
    or our please should so some that the their them then there these this those to up us using via want we what
    when where which while who will with would you your all any out over per under new file files""".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
# Longest suffixes first; the stem must keep at least three letters.
_SUFFIXES = (
    "isations",
    "izations",
    "isation",
    "ization",
    "ational",
    "fulness",
    "ousness",
    "ations",
    "ation",
    "ising",
    "izing",
    "ities",
    "ments",
    "ment",
    "ness",
    "ings",
    "ised",
    "ized",
    "ises",
    "izes",
    "ise",
    "ize",
    "ing",
    "ies",
    "ers",
    "ed",
    "er",
    "es",
    "ly",
    "s",
    "e",
    "y",
)

_ENDINGS = ("it", "iz", "is", "ys", "yz", "i")
# Words whose stripped form is a different word: "customers" is not "custom".
_WHOLE = {"customer": "customer", "customers": "customer"}


def stem(word: str) -> str:
    """A light suffix-stripping stem: ``summarise``/``summary``/``summaries`` -> ``summar``."""
    if word in _WHOLE:
        return _WHOLE[word]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]  # "planning" -> "plann" -> "plan"
    # Fold spelling variants onto one stem: analyse/analyze/analysis, organiser/organizer, security/secure.
    changed = True
    while changed:
        changed = False
        for suffix in _ENDINGS:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                changed = True
                break
    return word


def tokens(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Lower-cased, stemmed word tokens; identifiers like ``group_by`` also yield their parts."""
    out: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        parts = re.split(r"[-_]", word)
        for piece in [word, *parts] if len(parts) > 1 else [word]:
            if keep_stopwords or piece not in STOPWORDS:
                out.append(stem(piece))
    return out
