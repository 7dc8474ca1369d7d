"""Promotion: an approved generated script becomes a scaffold that dispatch can choose with no LLM.

The exact bytes a reviewer approved are read once and checked (by hash) before anything is
written, and those bytes become the scaffold's ``program.py`` unchanged. The program is never
made into a Jinja template: a template would parse the reviewed code as template syntax, and
a comment could then close a raw block and hide code that appears only for some parameter
value. Instead ``scaffold.toml`` records, for each parameter, the byte span of the constant's
literal (``[[substitutions]]``), and rendering writes values there as Python literals.

Before anything is kept, the new scaffold is loaded and rendered with its defaults (which
must give back the reviewed bytes exactly) and with other values of every parameter, edge
values included (quotes, newlines, template syntax); each rendering must differ from the
reviewed program only in those literals. The metadata records where the scaffold came from:
request, model, reviewer, date, hash, and which constants became parameters.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from harness.dispatch.text import STOPWORDS
from harness.errors import ConfigError, Conflict, InvalidInput, Refused
from harness.generation.render import literal_differences, render, validate_params
from harness.generation.scaffolds import Library, Parameter, Scaffold, Substitution, load_library
from harness.review.params import Proposal, substitutions
from harness.review.policy import assert_reviewed
from harness.review.store import GeneratedRecord, GeneratedStore
from harness.review.trust import seal_folder

__all__ = ["promote", "promoted_files"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,60}$")
_KINDS = {"automation", "security_audit", "research", "development", "project_management"}

# Values each parameter is tried with at promotion besides its default: whatever the value,
# the rendering may differ from the reviewed program only in the literal.
EDGE_TEXT = (
    "",
    'it\'s "quoted" \'\'\'both\'\'\' """ways"""',
    "two\nlines\r\nand a \\ backslash\\",
    "{% endraw %}",
    "{%+ endraw %}{% if params.x %}import os{% endif %}{% raw %}",
    "}}{{ params }}{#",
    "\x00\x1b[2K\u202e\ud800",
    "déjà vu ☃",
)


_REPORT = "promote it without parameters (--no-params) and report this"


def promoted_files(folder: Path) -> tuple[Path, ...]:
    """The exact files a promoted scaffold consists of (what an approval must cover), metadata first."""
    return (folder / "scaffold.toml", folder / "program.py")


def _toml_str(value: str) -> str:
    # A TOML basic string: JSON's escaping is a valid subset for what we write.
    return json.dumps(value)


def _metadata(
    record: GeneratedRecord,
    name: str,
    sha256: str,
    promoted_by: str,
    parameters: Sequence[Proposal],
    located: Sequence[Substitution],
) -> str:
    kind = str(record.analysis.get("workflow_type") or "automation")
    kind = kind if kind in _KINDS else "automation"
    words = [w for w in re.findall(r"[a-z][a-z0-9]+", record.request.lower()) if w not in STOPWORDS]
    keywords = list(dict.fromkeys(words))[:12] or [name]
    title = record.request.strip().rstrip(".")[:80]
    description = record.explanation or f"Generated for the request: {record.request.strip()}"
    provenance = {
        "source_request": record.request,
        "generated_id": record.id,
        "generator": f"harness {record.strategy}",
        "model": record.model,
        "reviewer": record.reviewer or "",
        "promoted_by": promoted_by,
        "promoted_at": GeneratedStore.now(),
        "sha256": sha256,
        "parameters": ", ".join(f"{p.constant} as {p.name} ({p.source})" for p in parameters) or "none",
    }
    lines = [
        f"name = {_toml_str(name)}",
        f"title = {_toml_str(title[:1].upper() + title[1:])}",
        f"description = {_toml_str(description)}",
        f"workflow_type = {_toml_str(kind)}",
        f"keywords = [{', '.join(_toml_str(k) for k in keywords)}]",
        "expected_runtime_s = 10.0",
        # The egress the reviewer granted these exact bytes stays with them.
        f"egress = [{', '.join(_toml_str(h) for h in record.granted_hosts)}]",
        "",
        *[line for p in parameters for line in p.toml()],
    ]
    for sub in located:
        # Where the parameter's literal sits in program.py, in bytes; checked at every load.
        lines += [
            "[[substitutions]]",
            f"parameter = {_toml_str(sub.parameter)}",
            f"constant = {_toml_str(sub.constant)}",
            f"start = {sub.start}",
            f"end = {sub.end}",
            "",
        ]
    lines += [
        "[provenance]",
        *[f"{key} = {_toml_str(value)}" for key, value in provenance.items()],
        "",
        "[[examples]]",
        f"request = {_toml_str(record.request)}",
        "params = {}",
        "",
    ]
    return "\n".join(lines)


def _alternatives(spec: Parameter) -> list[object]:
    default = spec.default
    if spec.type == "bool":
        return [not default]
    if spec.type == "int":
        return [default + 1 if isinstance(default, int) else 1, 0, -1, -(2**70)]
    if spec.type == "float":
        return [(default if isinstance(default, (int, float)) else 0.0) + 1.5, -0.0, 1e300, 5e-324]
    if spec.type == "choice":
        return list(spec.choices)
    if spec.type == "list[str]":
        return [[], list(EDGE_TEXT)]
    return list(EDGE_TEXT)


def probes(scaffold: Scaffold) -> list[dict[str, object]]:
    """Parameter sets tried at promotion: the defaults, each parameter changed alone, then all at once."""
    alone = [{name: value} for name, spec in scaffold.parameters.items() for value in _alternatives(spec)]
    together = {name: _alternatives(spec)[-1] for name, spec in scaffold.parameters.items()}
    return [{}, *alone, together] if together else [{}]


def _check_renders_as_reviewed(library_root: Path, name: str, reviewed: bytes) -> None:
    # Refused, not RunError: no run happened; promotion refuses what it cannot show is the reviewed script.
    library = load_library(library_root)
    if name not in library:
        raise Refused(f"the promoted scaffold {name} does not load", hint="; ".join(library.errors)[:300])
    scaffold = library.get(name)
    if scaffold.kind != "program" or scaffold.files != promoted_files(scaffold.folder):
        raise Refused(f"the promoted scaffold {name} is not kept as its reviewed program")
    try:
        defaults = render(scaffold, validate_params(scaffold, {}))
    except ConfigError as exc:
        raise Refused(f"{exc.message} (with its defaults); nothing was kept", hint=_REPORT) from None
    if defaults.encode("utf-8") != reviewed:
        raise Refused(f"the promoted scaffold {name} with its defaults is not the reviewed script", hint=_REPORT)
    for probe in probes(scaffold):
        try:
            values = validate_params(scaffold, probe)
        except ConfigError:
            continue  # a value the scaffold's own schema refuses never reaches the program
        which = ", ".join(sorted(probe)) or "none"
        try:
            problems = literal_differences(reviewed, render(scaffold, values), scaffold.substitutions, values)
        except ConfigError as exc:
            raise Refused(f"{exc.message} (another value of {which}); nothing was kept", hint=_REPORT) from None
        if problems:
            raise Refused(
                f"the promoted scaffold {name} rendered more than its parameters (another value of {which}):"
                f" {problems[0]}; nothing was kept",
                hint=_REPORT,
            )


def _approved_bytes(store: GeneratedStore, record_id: str) -> tuple[GeneratedRecord, bytes]:
    # Every read of the review store is here: the verified approval, then the script's bytes read
    # once and checked against it; only that buffer is used afterwards.
    record = store.load_record(record_id)
    _, data = assert_reviewed(store, record_id)
    return record, data


def _record_promotion(store: GeneratedStore, record: GeneratedRecord, folder: Path, name: str, reviewer: str) -> None:
    # Every write to the review store is here. The approval's MAC covers what promotion wrote:
    # every file of the folder, and the egress.
    seal = seal_folder(folder, name, tuple(record.granted_hosts))
    store.transition(record.id, "promoted", reviewer=reviewer, note=f"promoted as {name}", promoted_as=name, seal=seal)


def promote(
    store: GeneratedStore,
    record_id: str,
    name: str,
    *,
    library_root: Path,
    reviewer: str,
    parameters: Sequence[Proposal] = (),
) -> Path:
    """Turn an approved generated script into ``scaffolds/<name>/``; returns the new folder.

    ``parameters`` (confirmed proposals) become the scaffold's parameters. The reviewed bytes
    are kept verbatim as ``program.py``; unless the defaults render them back exactly and every
    trial value changes nothing but the parameters' literals, nothing is kept.
    """
    if not _NAME.match(name):
        raise InvalidInput(
            f"{name!r} is not a scaffold name",
            hint="use lower-case letters, digits and _, e.g. sales_rollup",
            name="name",
        )
    record, reviewed = _approved_bytes(store, record_id)
    sha256 = hashlib.sha256(reviewed).hexdigest()
    try:
        located = substitutions(reviewed.decode("utf-8"), list(parameters))
    except (UnicodeDecodeError, SyntaxError):
        raise Refused(f"{record_id}'s script is not UTF-8 Python", hint="it cannot be promoted") from None
    library: Library = load_library(library_root)
    if name in library or (library_root / name).exists():
        raise Conflict(f"a scaffold called {name!r} already exists", hint="pick another name", id=name)
    folder = library_root / name
    folder.mkdir(parents=True)
    try:
        meta, program = promoted_files(folder)
        with program.open("xb") as fh:
            fh.write(reviewed)
        with meta.open("x", encoding="utf-8") as fh:
            fh.write(_metadata(record, name, sha256, reviewer, parameters, located))
        _check_renders_as_reviewed(library_root, name, reviewed)
        _record_promotion(store, record, folder, name, reviewer)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
