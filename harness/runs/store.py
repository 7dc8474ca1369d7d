"""The runs folder (``Settings.runs_dir``): one folder per run, written and read here only.

A run's folder holds ``script.py``, ``checks.json``, ``events.jsonl``, ``result.json``,
``report.json`` and ``output/``; a plan's folder (``plan-<id>``) holds its phases' outputs and
``plan_report.json``. :class:`EventLog` is the one writer of ``events.jsonl``, under a count and
a byte cap: past either, events are counted, not written, and one ``events_dropped`` event at
the end says how many and how big. A script controls every event, so it can fill the log to
the cap and no further.

Pruning removes whole folders, oldest first, and leaves a line per folder in ``.pruned.jsonl``
so that loading a pruned run by id says it was pruned, and why, instead of "not found".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict

from harness.errors import InvalidInput, NotFound, RunPrunedError
from harness.events import Event, EventsDropped

__all__ = [
    "MAX_LOG_BYTES",
    "MAX_LOG_EVENTS",
    "EventLog",
    "PruneOutcome",
    "RunEntry",
    "RunFolder",
    "RunPrunedError",
    "RunStore",
    "human_size",
]

MAX_LOG_EVENTS = 20_000
MAX_LOG_BYTES = 8 * 1024 * 1024
_RUN_ID = re.compile(r"^(plan-)?[0-9a-f]{12}$")
_TOMBSTONES = ".pruned.jsonl"
_TOMBSTONES_MAX = 1024 * 1024  # past this, the older half of the lines goes
_LOCK = ".retention.lock"
# Always written, past the caps too: there is one of each per run, and without them the log
# would not say how the run ended or how much of it is missing.
_ALWAYS = ("run_finished",)


class RunEntry(BaseModel):
    """One folder of the runs folder, as ``harness runs list`` shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: Literal["run", "plan"]
    when: str
    mtime: float
    status: str
    finished: bool
    size: int


class PruneOutcome(BaseModel):
    """What a prune removed (or would remove, with ``dry_run``), and what it kept because something points at it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    removed: tuple[RunEntry, ...] = ()
    reasons: dict[str, str] = {}
    freed: int = 0
    protected: dict[str, str] = {}
    remaining: int = 0
    dry_run: bool = False


class EventLog:
    """Writes a run's ``events.jsonl`` under a count and a byte cap, with one ``events_dropped`` event at the end."""

    def __init__(self, path: Path, *, max_events: int = MAX_LOG_EVENTS, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.written = 0
        self.written_bytes = 0
        self.dropped = 0
        self.dropped_bytes = 0
        self.blank_lines = 0
        self._last_seq = 0
        self._last_t = 0.0
        self._fh: IO[bytes] | None = path.open("wb")

    def write(self, event: Event) -> bool:
        """Write one event unless a cap is reached; True when it was kept (so a display should show it)."""
        self._last_seq, self._last_t = max(self._last_seq, event.seq), max(self._last_t, event.t)
        if isinstance(event, EventsDropped):
            # The reader's own count of what it never handed on: folded into the one marker at the end.
            self.dropped += event.count
            self.dropped_bytes += event.bytes
            self.blank_lines += event.blank_lines
            return True
        line = (event.model_dump_json() + "\n").encode()
        full = self.written >= self.max_events or self.written_bytes + len(line) > self.max_bytes
        if full and event.kind not in _ALWAYS:
            self.dropped += 1
            self.dropped_bytes += len(line)
            return False
        self._put(line)
        return True

    def close(self) -> None:
        """Write the ``events_dropped`` marker if anything was dropped or folded, and close the file."""
        if self._fh is None:
            return
        if self.dropped or self.blank_lines:
            marker = EventsDropped(
                seq=self._last_seq + 1,
                t=self._last_t,
                count=self.dropped,
                bytes=self.dropped_bytes,
                blank_lines=self.blank_lines,
            )
            self._put((marker.model_dump_json() + "\n").encode())
        self._fh.close()
        self._fh = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _put(self, line: bytes) -> None:
        assert self._fh is not None, "the event log is closed"
        self._fh.write(line)
        # On disk as it happens: a run stopped by Ctrl-C, or watched from another process, has its log so far.
        self._fh.flush()
        self.written += 1
        self.written_bytes += len(line)


class RunFolder:
    """One run's folder: the files a run leaves, each written in one place."""

    def __init__(self, path: Path, *, max_events: int = MAX_LOG_EVENTS, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.run_id = path.name
        self._caps = (max_events, max_bytes)

    def write_text(self, name: str, text: str) -> Path:
        """Write one of the run's files (script.py, checks.json, result.json, report.json) whole."""
        return _write(self.path / name, text)

    def events(self) -> EventLog:
        """Open ``events.jsonl`` for this run (a context manager; closing it writes the marker)."""
        return EventLog(self.path / "events.jsonl", max_events=self._caps[0], max_bytes=self._caps[1])

    @property
    def output(self) -> Path:
        """The default folder for the run's /output."""
        return self.path / "output"


class RunStore:
    """Creates, lists, loads and prunes the folders under the runs folder."""

    def __init__(self, root: Path, *, max_events: int = MAX_LOG_EVENTS, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.root = root
        self._caps = (max_events, max_bytes)

    def create(self, run_id: str) -> RunFolder:
        """Make (or reopen) a run's folder."""
        path = self._path(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return RunFolder(path, max_events=self._caps[0], max_bytes=self._caps[1])

    def load(self, run_id: str) -> RunFolder:
        """An existing run's folder; RunPrunedError when retention removed it, NotFound when there never was one."""
        path = self._path(run_id)
        if path.is_dir():
            return RunFolder(path, max_events=self._caps[0], max_bytes=self._caps[1])
        tomb = self.tombstones().get(run_id)
        if tomb is not None:
            raise RunPrunedError(run_id, tomb.get("reason", "?"), tomb.get("at", "?"))
        raise NotFound(f"no run {run_id}", hint=f"see harness runs list (runs are kept in {self.root})", id=run_id)

    def entry(self, run_id: str) -> RunEntry:
        """How ``harness runs list`` describes one run or plan folder."""
        path = self.load(run_id).path
        return _describe(path)

    def list(self) -> list[RunEntry]:
        """Every run and plan folder, oldest first."""
        if not self.root.is_dir():
            return []
        entries = [_describe(p) for p in self.root.iterdir() if _RUN_ID.match(p.name) and p.is_dir()]
        return sorted(entries, key=lambda e: (e.mtime, e.id))

    def tombstones(self) -> dict[str, dict[str, str]]:
        """What pruning removed: id -> ``{"at", "reason"}``."""
        seen: dict[str, dict[str, str]] = {}
        try:
            lines = (self.root / _TOMBSTONES).read_text(encoding="utf-8").splitlines()
        except OSError:
            return seen
        for line in lines:
            try:
                row = json.loads(line)
                seen[str(row["id"])] = {"at": str(row.get("at", "?")), "reason": str(row.get("reason", "?"))}
            except (ValueError, KeyError, TypeError):
                continue
        return seen

    def prune(
        self,
        *,
        older_than_s: float | None = None,
        max_bytes: int | None = None,
        protected: Mapping[str, str] | None = None,
        dry_run: bool = False,
        now: float | None = None,
    ) -> PruneOutcome:
        """Remove folders older than ``older_than_s``, then the oldest until the rest fit in ``max_bytes``.

        Folders named in ``protected`` (id -> why) are never removed and still count toward the size.
        """
        now = time.time() if now is None else now
        protected = dict(protected or {})
        entries = self.list()
        kept_for = {e.id: protected[e.id] for e in entries if e.id in protected}
        candidates = [e for e in entries if e.id not in protected]
        reasons: dict[str, str] = {}
        if older_than_s is not None:
            for e in candidates:
                if now - e.mtime > older_than_s:
                    reasons[e.id] = f"older than {_duration(older_than_s)}"
        total = sum(e.size for e in entries if e.id not in reasons)
        if max_bytes is not None:
            for e in candidates:  # oldest first
                if total <= max_bytes:
                    break
                if e.id not in reasons:
                    reasons[e.id] = f"runs folder over {_size(max_bytes)}"
                    total -= e.size
        removed = tuple(e for e in entries if e.id in reasons)
        if not dry_run:
            self._remove(removed, reasons)
        return PruneOutcome(
            removed=removed,
            reasons=reasons,
            freed=sum(e.size for e in removed),
            protected=kept_for,
            remaining=total,
            dry_run=dry_run,
        )

    @contextmanager
    def locked(self) -> Iterator[bool]:
        """Hold the runs folder's retention lock if no one else does; yields whether it was taken."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / _LOCK).open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _remove(self, entries: Iterable[RunEntry], reasons: Mapping[str, str]) -> None:
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        entries = list(entries)
        if not entries:
            return
        # The tombstone first: a prune cut short still leaves each folder it touched explained.
        tomb = self.root / _TOMBSTONES
        with tomb.open("a", encoding="utf-8") as fh:
            for e in entries:
                fh.write(json.dumps({"id": e.id, "at": at, "reason": reasons[e.id], "size": e.size}) + "\n")
        for e in entries:
            shutil.rmtree(self.root / e.id, ignore_errors=True)
        if tomb.stat().st_size > _TOMBSTONES_MAX:
            lines = tomb.read_text(encoding="utf-8").splitlines()
            _write(tomb, "\n".join(lines[len(lines) // 2 :]) + "\n")

    def _path(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise InvalidInput(
                f"{run_id!r} is not a run id",
                hint="run ids look like 0123456789ab (plans: plan-0123456789ab)",
                name="run_id",
            )
        return self.root / run_id


def _describe(path: Path) -> RunEntry:
    """A folder's id, kind, last activity, status and size (never following links)."""
    kind: Literal["run", "plan"] = "plan" if path.name.startswith("plan-") else "run"
    mtime = path.lstat().st_mtime
    size = 0
    for folder, dirs, files in os.walk(path):
        for name in (*files, *dirs):
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            size += 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            if folder == str(path):
                mtime = max(mtime, st.st_mtime)
    status, finished = _status(path, kind)
    when = dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(timespec="seconds")
    return RunEntry(id=path.name, kind=kind, when=when, mtime=mtime, status=status, finished=finished, size=size)


def _status(path: Path, kind: str) -> tuple[str, bool]:
    names = ("plan_report.json",) if kind == "plan" else ("result.json", "report.json")
    for name in names:
        try:
            data = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        status = data.get("status") if isinstance(data, dict) else None
        if status is None and isinstance(data, dict) and isinstance(data.get("execution_result"), dict):
            status = data["execution_result"].get("status")
        return (str(status) if status is not None else "?"), True
    return "unfinished", False


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"


def _size(size: int) -> str:
    return human_size(size)


def human_size(size: float) -> str:
    """A byte count for people: ``812 B``, ``3.4 MiB``, ``2.0 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _write(target: Path, text: str) -> Path:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target
