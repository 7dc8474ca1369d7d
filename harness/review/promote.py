"""Promotion: an approved generated script becomes a scaffold that dispatch can choose with no LLM.

The exact bytes a reviewer approved are checked (by hash) before anything is written. The
scaffold's metadata records where it came from: request, model, reviewer, date, hash, and
which of the script's constants became parameters (see ``harness.review.params``).
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from harness.dispatch.text import STOPWORDS
from harness.errors import RunError, UserError
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import Library, load_library
from harness.review.params import Proposal, parameterise
from harness.review.policy import assert_reviewed
from harness.review.store import GeneratedRecord, GeneratedStore
from harness.review.trust import seal_folder

__all__ = ["promote"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,60}$")
_KINDS = {"automation", "security_audit", "research", "development", "project_management"}


def _toml_str(value: str) -> str:
    # A TOML basic string: JSON's escaping is a valid subset for what we write.
    import json

    return json.dumps(value)


def _metadata(record: GeneratedRecord, name: str, sha256: str, promoted_by: str, parameters: Sequence[Proposal]) -> str:
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
        "[provenance]",
        *[f"{key} = {_toml_str(value)}" for key, value in provenance.items()],
        "",
        "[[examples]]",
        f"request = {_toml_str(record.request)}",
        "params = {}",
        "",
    ]
    return "\n".join(lines)


def _check_loads_as_reviewed(library_root: Path, name: str, script: str) -> None:
    library = load_library(library_root)
    if name not in library:
        raise RunError(f"the promoted scaffold {name} does not load", hint="; ".join(library.errors)[:300])
    scaffold = library.get(name)
    rendered = render(scaffold, validate_params(scaffold, {}))
    if ast.dump(ast.parse(rendered)) != ast.dump(ast.parse(script)):
        raise RunError(
            f"the promoted scaffold {name} with its defaults is not the reviewed script",
            hint="promote it without parameters (--no-params) and report this",
        )


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

    ``parameters`` (confirmed proposals) become the scaffold's parameters; rendered with their
    defaults, the template must be the reviewed program, or nothing is kept.
    """
    record = store.load_record(record_id)
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a scaffold name", hint="use lower-case letters, digits and _, e.g. sales_rollup"
        )
    # The bytes read once here are the bytes hashed, parameterised and compared below.
    approval, data = assert_reviewed(store, record_id)
    script, current = data.decode("utf-8"), str(approval.sha256)
    template = parameterise(script, list(parameters))
    library: Library = load_library(library_root)
    if name in library or (library_root / name).exists():
        raise UserError(f"a scaffold called {name!r} already exists", hint="pick another --name")
    folder = library_root / name
    folder.mkdir(parents=True)
    try:
        # The script is the template; raw blocks keep Jinja from reading anything but the parameters.
        (folder / "template.py.j2").write_text(template, encoding="utf-8")
        (folder / "scaffold.toml").write_text(_metadata(record, name, current, reviewer, parameters), encoding="utf-8")
        _check_loads_as_reviewed(library_root, name, script)
        # The approval's MAC covers what promotion wrote: every file of the folder, and the egress.
        seal = seal_folder(folder, name, tuple(record.granted_hosts))
        store.transition(
            record_id, "promoted", reviewer=reviewer, note=f"promoted as {name}", promoted_as=name, seal=seal
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
