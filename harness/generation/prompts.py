"""Prompts for script generation: the sandbox contract, worked examples, the request, repairs.

The stable part (contract, examples) comes first and is marked for prompt caching; the
request and any repair feedback follow. Inputs are described by name and shape only.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.checks import ALLOWED_MODULES, Finding

__all__ = ["contract", "describe_inputs", "prompt_hash", "repair_after_findings", "repair_after_run", "system_blocks"]

_CONTRACT = """You write Python scripts that run inside the harness sandbox. The sandbox is a throwaway
container: Python 3.11, the standard library only, no network, a read-only filesystem except
/output, /tmp and the working directory /work, a non-root user, limits on memory, processes and time.

Conventions:
- Inputs are read-only under /input (each input appears as /input/<name>). Read the folder from
  os.environ.get("HARNESS_INPUT", "/input").
- Write every result under /output (os.environ.get("HARNESS_OUTPUT", "/output")). Scratch files go to /tmp.
- Structure: a main() function returning an exit code, and `if __name__ == "__main__": sys.exit(main())`.
  Exit 0 on success; on failure print one clear line to stderr and exit non-zero: 2 when the
  inputs or parameters cannot serve the request (a missing file or column: name it and what is
  there), 3 when nothing usable could be read, 1 for anything else. The exit code decides
  success; nothing the script prints does. Finding nothing that matches is an answer (exit 0,
  say so); reading nothing is not.
- Report progress with the helper module (already importable):
    import harness_runtime as hr
    with hr.phase("name"): ...            # a named phase
    hr.progress(done, total, "message")   # progress inside a phase
    hr.log("message", level="info")      # debug, info, warning, error
    hr.metric("name", value, "unit")
    hr.processed(read, out, skipped, unit="rows", out_as="kept")  # what was read, used and left out
                                          # (read == out + skipped); the host fails a run that read nothing
    hr.artifact("file.json", "what it is")  # a file written under /output
    hr.result({...})                      # a JSON-serialisable summary
    hr.agent("role", "prompt") -> str     # ask the host for an LLM answer; raises hr.AgentError
                                          # when none is available: catch it and carry on.
    hr.fetch(url, method="GET", headers={...}, data=b"") -> hr.Response  # .status .headers .body .json()
                                          # the host makes the request, only to hosts a reviewer has
                                          # granted this script; otherwise it raises hr.FetchError.
- Allowed imports (nothing else): {modules}.
- Forbidden, and rejected by a static gate before the script runs: eval, exec, compile, __import__,
  importlib, subprocess, os.system and other process functions, sockets, pickle/marshal, ctypes,
  globals()/locals()/vars(), attributes with double underscores (except __name__ and the like),
  getattr/setattr with computed names, frame or code introspection, reaching modules through other
  modules (logging.os), writes outside /output, /tmp and /work, hard-coded secrets.
- Prefer plain, readable code; handle missing or malformed input with a clear message.

Answer by calling the write_script tool with the complete script."""


def contract() -> str:
    """The sandbox contract, with the allowed modules of the policy."""
    return _CONTRACT.replace("{modules}", ", ".join(sorted(ALLOWED_MODULES)))


def system_blocks(examples: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """System prompt blocks: the contract, then worked examples; both cached (they rarely change)."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": contract()}]
    if examples:
        text = "\n\n".join(f"Worked example: {title}\n```python\n{source}```" for title, source in examples)
        blocks.append({"type": "text", "text": text})
    blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return blocks


def describe_inputs(paths: Sequence[Path], *, max_files: int = 40) -> str:
    """Names and shapes of the inputs (file names, sizes, CSV headers, JSON keys), never contents."""
    lines: list[str] = []
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())[:max_files]
        for path in files:
            rel = f"/input/{root.name}" + ("" if path == root else f"/{path.relative_to(root)}")
            lines.append(f"- {rel} ({path.stat().st_size} bytes){_shape(path)}")
    return "\n".join(lines) if lines else "(no inputs)"


def _shape(path: Path) -> str:
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8", errors="replace") as fh:
                header = next(csv.reader(fh), [])
            return f": CSV columns {header[:30]}"
        if path.suffix.lower() in (".json", ".jsonl") and path.stat().st_size < 5_000_000:
            first = path.read_text(encoding="utf-8", errors="replace")
            data = json.loads(first.splitlines()[0] if path.suffix == ".jsonl" else first)
            if isinstance(data, list) and data and isinstance(data[0], dict):
                return f": JSON array of {len(data)} objects with keys {sorted(data[0])[:30]}"
            if isinstance(data, dict):
                return f": JSON object with keys {sorted(data)[:30]}"
    except (OSError, ValueError, StopIteration):
        return ""
    return ""


def request_message(
    request: str, inputs: str, strategy: str, base: tuple[str, str] | None, leftover: Sequence[str] = ()
) -> str:
    """The user turn: the request, the inputs' shapes, how to approach it, and what no scaffold explains."""
    parts = [f"Request: {request}", "", "Inputs:", inputs, ""]
    if leftover:
        # What made the heuristic stop short of a scaffold run: the script must do these too.
        parts += ["The bundled scaffolds cannot do this part of the request; your script must:", *leftover, ""]
    if strategy == "hybrid" and base is not None:
        parts += [
            f"Start from the scaffold {base[0]!r} below and adapt it to the request; keep its structure "
            "and progress reporting.",
            "```python",
            base[1],
            "```",
        ]
    else:
        parts.append("Write a new script for this request, following the contract and the worked examples.")
    return "\n".join(parts)


def repair_after_findings(findings: Sequence[Finding]) -> str:
    """Feedback for a script the static gate refused."""
    lines = [f"- line {f.line}: {f.code} {f.message}. Fix: {f.hint}" for f in findings][:30]
    return "The static gate refused the script:\n" + "\n".join(lines) + "\nReturn the whole corrected script."


def repair_after_run(status: str, exit_code: int | None, message: str, stderr_tail: str, events: str) -> str:
    """Feedback for a script that failed in the sandbox."""
    return (
        f"The script ran in the sandbox and ended with status {status} (exit code {exit_code}): {message}.\n"
        f"Last stderr:\n```\n{stderr_tail[-3000:]}\n```\nLast events:\n{events[-2000:]}\n"
        "Return the whole corrected script."
    )


def prompt_hash(system: Sequence[dict[str, Any]], first_message: str) -> str:
    """A short hash identifying the prompt a script was generated from."""
    return hashlib.sha256((json.dumps(list(system), sort_keys=True) + first_message).encode()).hexdigest()[:16]
