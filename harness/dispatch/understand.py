"""Reading what a request asks for, and binding it to a scaffold's parameters with the data's help.

Two steps, both pure. ``read_request`` finds the common phrasings ("per X", "by X", "for each
X", "over/under/at least N", "top N", "called X", "as/to FORMAT", file names and globs, "keep
A, B and C", "last N days") without knowing any scaffold. ``bind`` maps that reading onto one
scaffold's declared parameters, checking every value against the inputs (``InputFacts``): a
column must exist (matched case-insensitively), a choice must be one of the choices or one of
its declared aliases, a value word ("paid ones") becomes a condition only when exactly one
column holds it. What cannot be bound is reported as missing, with suggestions from the data;
nothing is invented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.dispatch.inputs import InputFacts

__all__ = ["Binding", "Condition", "Missing", "RequestReading", "bind", "read_request"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """A comparison the request states: ``subject`` is the words before it (a field, or empty)."""

    subject: str = ""
    op: str
    value: str
    text: str = Field(description="the words it was read from")


class RequestReading(_Model):
    """What a request asks for, in scaffold-neutral terms."""

    group_by: tuple[str, ...] = ()
    each: tuple[str, ...] = Field((), description="nouns after a bare 'each': groups only where they name a column")
    top: int | None = None
    conditions: tuple[Condition, ...] = ()
    name: str | None = None
    formats: tuple[str, ...] = ()
    files: tuple[str, ...] = Field((), description="file names or globs the request mentions")
    fields: tuple[str, ...] = Field((), description="fields to keep ('keep id, name and total')")
    sort: tuple[str, ...] = ()
    last_days: int | None = None
    words: tuple[str, ...] = Field((), description="the request's content words, lower case")


class Missing(_Model):
    """A parameter the request and the data leave open, with what the data suggests."""

    name: str
    type: str
    description: str = ""
    suggestions: tuple[str, ...] = ()
    reason: str = ""
    sole: str | None = None


class Binding(_Model):
    """Parameter values for one scaffold, what is still missing, and how each value was found."""

    params: dict[str, str | list[str]] = Field(default_factory=dict)
    missing: tuple[Missing, ...] = ()
    notes: tuple[str, ...] = ()
    unmet: tuple[str, ...] = Field((), description="things the request asks that this scaffold cannot do")


# -- reading ------------------------------------------------------------------------------------
_STOP = frozenset(
    "a an the of in on at to for from by with and or then all every each my our your this that these those "
    "into as per file files folder folders data please me it them its their one ones only".split()
)
_DATA_WORDS = frozenset({"data", "file", "files", "folder", "folders"})
_END = r"(?=\s*(?:$|[,;.!?]|\b(?:and|then|with|in|from|as|to|into|over|under|above|below|for|where|sorted|"
_END += r"ordered|keeping|keep|only|showing|that|which|using|at|than|per|by|called|named)\b))"
_GROUP = re.compile(
    rf"\b(?:per|by|for each|for every|grouped by|group by|broken down by|split by|across)\s+(?:the\s+|each\s+)?"
    rf"(?P<what>[\w][\w .-]{{0,40}}?){_END}",
    re.IGNORECASE,
)
_EACH = re.compile(r"\beach\s+(?P<what>[A-Za-z][\w-]{1,40})\b", re.IGNORECASE)
_TOP = re.compile(r"\b(?:top|first|largest|biggest|most common|most frequent)\s+(?P<n>\d{1,6})\b", re.IGNORECASE)
_TOP_AFTER = re.compile(r"\b(?P<n>\d{1,6})\s+(?:largest|biggest|most|top|highest|latest)\b", re.IGNORECASE)
_COMPARE_WORDS = {
    "over": ">",
    "above": ">",
    "more than": ">",
    "greater than": ">",
    "higher than": ">",
    "bigger than": ">",
    "larger than": ">",
    "at least": ">=",
    "no less than": ">=",
    "minimum of": ">=",
    "under": "<",
    "below": "<",
    "less than": "<",
    "lower than": "<",
    "smaller than": "<",
    "fewer than": "<",
    "at most": "<=",
    "no more than": "<=",
    "maximum of": "<=",
    "equal to": "==",
    "exactly": "==",
}
_COMPARE = re.compile(
    r"(?P<subject>(?:[\w.-]+\s+){0,3}?)(?P<word>"
    + "|".join(sorted((re.escape(w) for w in _COMPARE_WORDS), key=len, reverse=True))
    + r"|>=|<=|==|!=|>|<|=)\s*(?P<value>[$€£]?-?\d[\d,]*(?:\.\d+)?)\b",
    re.IGNORECASE,
)
_CALLED = re.compile(r"\b(?:called|named|name it|titled)\s+[\"'`]?(?P<name>[\w.-]+)", re.IGNORECASE)
_FORMATS = {
    "csv": "csv",
    "json": "json",
    "jsonl": "jsonl",
    "json lines": "jsonl",
    "json-lines": "jsonl",
    "ndjson": "jsonl",
    "markdown": "md",
    "md": "md",
    "zip": "zip",
    "tar": "tar",
    "tar.gz": "tar.gz",
    "tgz": "tar.gz",
    "gzip": "tar.gz",
    "png": "png",
    "chart": "png",
    "plot": "png",
    "graph": "png",
    "pdf": "pdf",
    "excel": "xlsx",
    "xlsx": "xlsx",
    "html": "html",
    "yaml": "yaml",
    "xml": "xml",
}
_AS_FORMAT = re.compile(
    r"\b(?:to|as|into|in|a|an|as an?)\s+(?P<fmt>json lines|json-lines|tar\.gz|"
    + "|".join(sorted((re.escape(f) for f in _FORMATS if " " not in f and "." not in f), key=len, reverse=True))
    + r")\b(?:\s+(?:file|format|output|archive|table|document))?",
    re.IGNORECASE,
)
_FILE = re.compile(r"(?<![\w/])(?P<file>[\w*?.-]*[\w*?]\.(?:[A-Za-z0-9]{1,6}))\b")
_KEEP = re.compile(
    r"\b(?:keep(?:ing)?(?: only)?|only keep|select(?:ing)?|with (?:only )?(?:the )?(?:columns?|fields?)|"
    r"show(?:ing)? only|just)\s+(?:the\s+)?(?P<list>[\w .,-]+?)"
    r"(?=\s*(?:$|[;.!?]|\b(?:then|sorted|ordered|as|to|in|from|where)\b))",
    re.IGNORECASE,
)
_SORT = re.compile(
    r"\b(?:sorted|ordered|sort|order|rank(?:ed)?)\s+by\s+(?:the\s+)?(?P<field>[\w.-]+"
    r"(?: (?!asc|desc|highest|largest|lowest|smallest|first|then|and|as)[\w.-]+)?)"
    r"(?:\s+(?P<dir>asc(?:ending)?|desc(?:ending)?|highest first|largest first|lowest first|smallest first))?",
    re.IGNORECASE,
)
_LAST_DAYS = re.compile(r"\b(?:last|past)\s+(?P<n>\d{1,4})\s+days?\b", re.IGNORECASE)
_LAST_UNIT = re.compile(r"\b(?:last|past)\s+(?P<unit>day|week|month|year)\b", re.IGNORECASE)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 31, "year": 366}


def _number(text: str) -> str:
    return text.lstrip("$€£").replace(",", "")


def read_request(request: str) -> RequestReading:
    """The request's asks in scaffold-neutral terms (no scaffold, no data needed)."""
    text = " ".join(request.split())
    groups = []
    for match in _GROUP.finditer(text):
        what = match["what"].strip(" .-")
        group_words = [w for w in what.split() if w.lower() not in _STOP]
        if group_words and not re.fullmatch(r"[\d.,]+", what) and not _FILE.fullmatch(what):
            groups.append(" ".join(group_words))
    top = None
    for pattern in (_TOP, _TOP_AFTER):
        found = pattern.search(text)
        if found:
            top = int(found["n"])
            break
    conditions = []
    for match in _COMPARE.finditer(text):
        word = match["word"].lower()
        op = _COMPARE_WORDS.get(word, "==" if word == "=" else word)
        subject_words = [w for w in match["subject"].split() if w.lower() not in _STOP and not w.isdigit()]
        conditions.append(
            Condition(
                subject=" ".join(subject_words[-2:]), op=op, value=_number(match["value"]), text=match.group(0).strip()
            )
        )
    called = _CALLED.search(text)
    formats = []
    for match in _AS_FORMAT.finditer(text):
        formats.append(_FORMATS[match["fmt"].lower()])
    for word in re.findall(r"[A-Za-z]+", text.lower()):
        if word in ("png", "chart", "plot", "graph", "pdf", "excel", "xlsx") and _FORMATS[word] not in formats:
            formats.append(_FORMATS[word])
    files = []
    for match in _FILE.finditer(text):
        name = match["file"]
        if re.fullmatch(r"[\d.]+", name) or name.lower().startswith(("e.g", "i.e")):
            continue
        files.append(name)
    fields: list[str] = []
    keep = _KEEP.search(text)
    if keep:
        for part in re.split(r",|\band\b|&", keep["list"]):
            part = part.strip(" .")
            if part and part.lower() not in _STOP:
                fields.append(part)
    sort = []
    for match in _SORT.finditer(text):
        direction = (match["dir"] or "").lower()
        descending = direction.startswith("desc") or direction.startswith(("highest", "largest"))
        sort.append(f"{match['field']} desc" if descending else match["field"])
    last_days = None
    days = _LAST_DAYS.search(text)
    if days:
        last_days = int(days["n"])
    else:
        unit = _LAST_UNIT.search(text)
        if unit:
            last_days = _UNIT_DAYS[unit["unit"].lower()]
    # Data nouns stay among the words: "sales data" must read as the data, not as an amount.
    words = tuple(w for w in re.findall(r"[a-z0-9][a-z0-9_'-]*", text.lower()) if w not in _STOP - _DATA_WORDS)
    each = [m["what"] for m in _EACH.finditer(text) if m["what"].lower() not in _STOP | {"other"}]
    return RequestReading(
        group_by=tuple(dict.fromkeys(groups)),
        each=tuple(dict.fromkeys(each)),
        top=top,
        conditions=tuple(conditions),
        name=called["name"] if called else None,
        formats=tuple(dict.fromkeys(formats)),
        files=tuple(dict.fromkeys(files)),
        fields=tuple(fields),
        sort=tuple(sort),
        last_days=last_days,
        words=words,
    )


# -- binding ------------------------------------------------------------------------------------
# Words that name a computed amount rather than a column; bound to quantity x price when the data has both.
_AMOUNT_WORDS = ("sales", "revenue", "turnover", "amount", "income", "takings", "spend", "cost", "value")
_DATA_NOUNS = frozenset(
    "data file spreadsheet sheet export csv report table record folder log figure dataset database list".split()
)
_QUANTITY = ("units", "quantity", "qty", "count", "items", "pieces", "amount")
_PRICE = ("unit_price", "price", "unit price", "unit_cost", "cost", "rate", "price_each")


def _produces(scaffold: Any) -> set[str]:
    """The file formats a scaffold writes, from its declared outputs and any format choices."""
    made: set[str] = set()
    for output in getattr(scaffold, "outputs", ()) or ():
        for ext in re.findall(r"\.([A-Za-z0-9]+(?:\.gz)?)\b", str(getattr(output, "path", ""))):
            made.add(_FORMATS.get(ext.lower(), ext.lower()))
    for spec in (getattr(scaffold, "parameters", {}) or {}).values():
        if _param_type(spec) == "choice":
            made.update(str(c) for c in getattr(spec, "choices", ()) or ())
    return made


def _param_type(spec: Any) -> str:
    return str(getattr(spec, "type", ""))


def _aliases(spec: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (getattr(spec, "aliases", None) or {}).items()}


def _choice(word: str, spec: Any) -> str | None:
    choices = [str(c) for c in (getattr(spec, "choices", None) or ())]
    lowered = word.lower().strip()
    for choice in choices:
        if choice.lower() == lowered:
            return choice
    alias = _aliases(spec).get(lowered) or _aliases(spec).get(lowered.rstrip("s"))
    return alias if alias in choices else None


def _column(facts: InputFacts | None, phrase: str) -> str | None:
    if facts is None or not facts.has_tables:
        return None
    hit = facts.find_column(phrase)
    if hit is None and " " in phrase:
        # "customer region" -> a column "region" or "customer_region"; the longest match wins.
        words = phrase.split()
        for size in range(len(words) - 1, 0, -1):
            for start in range(len(words) - size + 1):
                hit = facts.find_column(" ".join(words[start : start + size]))
                if hit:
                    return hit
    if hit is None and phrase.endswith("s"):
        hit = facts.find_column(phrase[:-1])
    return hit


def _amount_formula(facts: InputFacts, words: tuple[str, ...]) -> tuple[str, str] | None:
    """``sales = units * unit_price`` when the request asks for an amount the data has as quantity and price."""
    asked = None
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        # "the sales data", "sales spreadsheets": the word names the data, not an amount to compute.
        if word in _AMOUNT_WORDS and following.rstrip("s") not in _DATA_NOUNS:
            asked = word
            break
    if asked is None or facts.find_column(asked) is not None:
        return None
    numeric = facts.numeric_columns
    if any(facts.find_column(word) in numeric for word in words if word != asked):
        return None  # the request names the numbers to add up ("add up the units"): no amount to derive
    quantity = next((c for q in _QUANTITY for c in numeric if facts.find_column(q) == c), None)
    price = next((c for p in _PRICE for c in numeric if facts.find_column(p) == c and c != quantity), None)
    if quantity is None or price is None:
        return None

    def ref(column: str) -> str:
        return column if re.fullmatch(r"[A-Za-z_][\w.]*", column) else f"`{column}`"

    return asked, f"{asked} = {ref(quantity)} * {ref(price)}"


def _condition(cond: Condition, facts: InputFacts | None) -> tuple[str | None, str]:
    """``field op value`` for a stated comparison, or None and why it cannot be bound."""
    subject = cond.subject
    if facts is not None and facts.has_tables:
        column = _column(facts, subject) if subject else None
        if column is None:
            for word in reversed(subject.split()):
                column = _column(facts, word)
                if column:
                    break
        if column is None:
            numeric = facts.numeric_columns
            named = [c for c in numeric if c.casefold().split(".")[-1] in ("total", "amount", "price", "value", "sum")]
            if len(numeric) == 1:
                column = numeric[0]
            elif len(named) == 1:
                column = named[0]
        if column is None:
            return None, f"which field '{cond.text}' compares"
        return f"{column} {cond.op} {cond.value}", ""
    if subject:
        return f"{subject.split()[-1]} {cond.op} {cond.value}", ""
    return None, f"which field '{cond.text}' compares"


def bind(
    reading: RequestReading,
    scaffold: Any,
    facts: InputFacts | None = None,
    given: Mapping[str, str] | None = None,
) -> Binding:
    """Parameter values for ``scaffold`` from the reading and the inputs; what stays open is ``missing``."""
    params: dict[str, str | list[str]] = dict(given or {})
    missing: list[Missing] = []
    notes: list[str] = []
    unmet: list[str] = []
    parameters: Mapping[str, Any] = getattr(scaffold, "parameters", {}) or {}
    lists: dict[str, list[str]] = {}

    def take(name: str, value: str, why: str) -> None:
        if name not in params:
            params[name] = value
            notes.append(f"{name}={value}: {why}")

    def refuse(
        name: str,
        spec: Any,
        reason: str,
        suggestions: list[str] | tuple[str, ...] = (),
        *,
        candidates: list[str] | tuple[str, ...] = (),
    ) -> None:
        # ``candidates`` are the values the data allows for what the request says; only when
        # there is exactly one may a caller that said "do not ask" (--yes) take it.
        if name in params:
            return
        missing.append(
            Missing(
                name=name,
                type=_param_type(spec),
                description=str(getattr(spec, "description", "")),
                suggestions=tuple(dict.fromkeys(suggestions))[:8],
                reason=reason,
                sole=candidates[0] if len(set(candidates)) == 1 else None,
            )
        )

    formula = _amount_formula(facts, reading.words) if facts is not None and facts.has_tables else None
    format_param = parameters.get("format")
    if reading.formats and (format_param is None or _param_type(format_param) != "choice"):
        makes = _produces(scaffold)
        unmet.extend(f"{fmt} output" for fmt in reading.formats if fmt not in makes)
    for name, spec in parameters.items():
        kind = _param_type(spec)
        if name in params and name.endswith("by") and kind == "str" and facts is not None and facts.has_tables:
            # A column given by the caller is checked against the data too, so a typo is asked
            # again (or refused) before anything runs, with the columns it probably meant.
            stated = str(params[name])
            found = facts.find_column(stated)
            if found is not None:
                params[name] = found
            else:
                del params[name]
                near = facts.suggest_columns(stated)
                reason = f"no column of the inputs matches {stated!r}"
                # A close spelling is a suggestion, never a candidate to assume: "county" is
                # not "country". A person may take it at the prompt; --yes may not.
                refuse(name, spec, reason, near or facts.columns)
            continue
        if name in params:
            continue
        if name.endswith("by") and kind == "str":
            phrase = reading.group_by[0] if reading.group_by else None
            if phrase is None and facts is not None:
                # "how many units did each region sell": a bare "each X" groups only when X is a column.
                phrase = next((word for word in reading.each if facts.find_column(word) is not None), None)
            if phrase is None:
                if getattr(spec, "required", False):
                    # Groups are made of labels: the non-numeric columns are the ones worth offering.
                    labels = facts.label_columns if facts else []
                    shown = [*labels, *(facts.columns if facts else ())]
                    refuse(name, spec, "the request does not say what to group by", shown, candidates=labels)
                continue
            column = _column(facts, phrase)
            if column is not None:
                take(name, column, f"'by {phrase}' names the column {column!r}")
            elif facts is not None and facts.has_tables:
                near = facts.suggest_columns(phrase)
                reason = f"no column of the inputs matches {phrase!r}"
                # A close spelling is a suggestion, never a candidate to assume: "county" is
                # not "country". A person may take it at the prompt; --yes may not.
                refuse(name, spec, reason, near or facts.columns)
            else:
                take(name, phrase, f"'by {phrase}' in the request")
        elif kind == "choice":
            candidates = [*reading.group_by, *reading.formats, *reading.words]
            hits = list(dict.fromkeys(c for c in (_choice(w, spec) for w in candidates) if c))
            if name == "format" and reading.formats:
                formats = [c for c in (_choice(f, spec) for f in reading.formats) if c]
                if formats:
                    take(name, formats[0], f"the request asks for {formats[0]}")
                else:
                    unmet.append(f"{', '.join(reading.formats)} output")
                continue
            if len(hits) == 1:
                take(name, hits[0], "named in the request")
            elif name == "by" and reading.group_by and not hits:
                choices = getattr(spec, "choices", ())
                refuse(name, spec, f"{reading.group_by[0]!r} is not one of {', '.join(choices)}", choices)
        elif kind == "int" and name in ("top", "limit", "count", "n") and reading.top is not None:
            take(name, str(reading.top), f"'top {reading.top}' in the request")
        elif kind in ("int", "float") and name in ("days", "since_days", "last_days") and reading.last_days:
            take(name, str(reading.last_days), f"'last {reading.last_days} days' in the request")
        elif kind == "str" and getattr(spec, "required", False) and reading.name and name not in params:
            take(name, reading.name, f"'called {reading.name}' in the request")
        elif kind == "str" and name in ("pattern", "glob", "file") and reading.files:
            mentioned = reading.files[0]
            value = mentioned if name == "file" else (mentioned if "/" in mentioned else f"**/{mentioned}")
            take(name, value, f"the request names {mentioned}")
        elif kind == "list[str]" and name == "where":
            conditions = []
            for cond in reading.conditions:
                bound, why = _condition(cond, facts)
                if bound is None:
                    unmet.append(why)
                else:
                    conditions.append(bound)
            if facts is not None and facts.has_tables:
                for word in reading.words:
                    columns = facts.columns_with_value(word)
                    if len(columns) == 1 and facts.find_column(word) is None:
                        conditions.append(f"{columns[0]} == {word}")
            if conditions:
                lists[name] = conditions
        elif kind == "list[str]" and name == "select" and reading.fields:
            chosen: list[str] = []
            unknown: list[str] = []
            for field in reading.fields:
                column = _column(facts, field) if facts is not None and facts.has_tables else field
                (chosen if column else unknown).append(column or field)
            if unknown:
                unmet.append(f"no field matches {', '.join(repr(u) for u in unknown)}")
            lists[name] = chosen
        elif kind == "list[str]" and name == "sort" and reading.sort:
            sorted_by = []
            for item in reading.sort:
                field, _, direction = item.partition(" ")
                column = _column(facts, field) if facts is not None and facts.has_tables else field
                if column:
                    sorted_by.append(f"{column} {direction}".strip())
            if sorted_by:
                lists[name] = sorted_by
        elif kind == "list[str]" and name == "derive" and formula is not None:
            lists[name] = [formula[1]]
            notes.append(f"derive: {formula[1]} (the request asks for {formula[0]})")
        elif kind == "list[str]" and name == "columns" and formula is not None:
            lists[name] = [formula[0]]
    for name, values in lists.items():
        if name not in params:
            params[name] = values
            if name != "derive":
                notes.append(f"{name}={', '.join(values)}: from the request and the data")
    return Binding(params=params, missing=tuple(missing), notes=tuple(notes), unmet=tuple(unmet))
