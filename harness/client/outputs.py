"""``--output DIR`` for a run a server made: download its outputs tar and collect it here, trusting none of it.

The server sends its run's output folder as a tar. Its names, types and sizes came from the
script, so the tar is collected with the very rules a run on this machine uses
(``harness.execution.outputs.collect_outputs``): a fresh (or ``--merge``/``--overwrite``) folder,
no names leaving it, no links, no dot-files, files created without following links, and caps.
The caps are what the server said the run produced: no more bytes than its artifacts' sizes add
up to (the download itself stops a tar's worth of headers past that) and no more entries than it
listed. Whatever is refused, cut or already there makes the outputs ``partial``, as locally.
"""

from __future__ import annotations

import http.client
import tempfile
from pathlib import Path

from harness.client.transport import Client, ServerLost
from harness.execution.outputs import Collected, collect_outputs, prepare_destination

# Not typing.TYPE_CHECKING: the thin client's start-up would pay for importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import IO, Any

__all__ = ["download_outputs", "fetch_outputs", "merged_report", "merged_result"]

_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_TAR_OVERHEAD = 2 * 512  # a header block and the last block's padding, per member
_TAR_END = 20 * 512  # the end-of-archive blocks and a record's padding


def download_outputs(client: Client, run_id: str, limit: int) -> tuple[IO[bytes], bool]:
    """The run's outputs tar, spooled (to disk past 8 MiB) and cut at ``limit`` bytes; True when it was cut."""
    conn, response = client.open("GET", f"/v1/runs/{run_id}/outputs", headers={"Accept": "application/x-tar"})
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    cut = False
    try:
        total = 0
        while chunk := response.read(min(1 << 20, limit - total + 1)):
            if total + len(chunk) > limit:
                spool.write(chunk[: limit - total])
                cut = True
                break
            spool.write(chunk)
            total += len(chunk)
    except (OSError, http.client.HTTPException) as exc:
        spool.close()
        raise ServerLost(f"lost the connection while downloading the outputs of run {run_id}: {exc}") from None
    finally:
        conn.close()
    spool.seek(0)
    return spool, cut


def fetch_outputs(
    client: Client, run_id: str, dest: str, mode: str, artifacts: Sequence[Mapping[str, Any]]
) -> tuple[Path, Collected]:
    """Collect run ``run_id``'s outputs into ``dest`` as ``mode`` allows; the folder and what was collected.

    ``artifacts`` are the files the server says the run produced: they set the caps and say
    which files the script declared.
    """
    folder = prepare_destination(Path(dest), mode, run_id)  # type: ignore[arg-type]  # checked by the caller
    cap = sum(max(0, int(a["size"])) for a in artifacts)
    # A script run's artifacts say whether the script declared each; a report's deliverables carry descriptions.
    declared = {
        str(a["path"]): str(a.get("description") or "") for a in artifacts if a.get("declared") or a.get("description")
    }
    spool, cut = download_outputs(client, run_id, cap + _TAR_OVERHEAD * len(artifacts) + _TAR_END)
    try:
        got = collect_outputs(spool, folder, cap=cap, declared=declared, max_files=len(artifacts))
    finally:
        spool.close()
    if cut:
        got.leave(f"the outputs download of run {run_id} was cut at the size the server reported")
    missing = len(artifacts) - len(got.files) - len(got.conflicts)
    if missing > 0 and not got.partial:
        got.leave(f"{missing} of the {len(artifacts)} outputs the server listed did not arrive")
    return folder, got


def _kept(rows: Sequence[Mapping[str, Any]], got: Collected) -> list[dict[str, Any]]:
    """The server's rows for the files collected here, with the sizes written here, in the server's order."""
    sizes = {f.path: f.size for f in got.files}
    return [{**row, "size": sizes[str(row["path"])]} for row in rows if str(row["path"]) in sizes]


def merged_result(result: Mapping[str, Any], folder: Path, got: Collected) -> dict[str, Any]:
    """A script run's result (``RunResult`` as JSON) as if its outputs had been collected into ``folder`` here."""
    return {
        **result,
        "output_dir": str(folder),
        "artifacts": _kept(result.get("artifacts") or (), got),
        "output_warnings": [*(result.get("output_warnings") or ()), *got.warnings],
        "output_conflicts": list(got.conflicts),
        "outputs_partial": bool(result.get("outputs_partial")) or got.partial,
    }


def merged_report(report: Mapping[str, Any], folder: Path, got: Collected) -> dict[str, Any]:
    """A request's report (``Report`` as JSON) as if its outputs had been collected into ``folder`` here."""
    result = report["execution_result"]
    merged = {
        **result,
        "deliverables": _kept(result.get("deliverables") or (), got),
        "output_dir": str(folder),
        "outputs_partial": bool(result.get("outputs_partial")) or got.partial,
        "output_conflicts": list(got.conflicts),
    }
    return {**report, "execution_result": merged}
