"""The composition root: one object that owns the long-lived resources a process needs.

A CLI invocation, a server's lifespan or a worker process opens one ``Services`` and closes it
when done; everything in it is built at most once, on first use, and released in reverse
order on exit. Nothing here talks to the engine until ``backend`` is first read, so listing
templates needs no Docker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import ExitStack
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from harness.settings import Settings

if TYPE_CHECKING:
    from harness.execution.backend import Backend
    from harness.generation.agents import Role
    from harness.generation.budget import Budget
    from harness.generation.llm import Llm
    from harness.generation.scaffolds import Library
    from harness.history.store import HistoryStore
    from harness.review.store import GeneratedStore
    from harness.runs import RunStore

__all__ = ["Services"]

BackendFactory = Callable[[Settings], "Backend"]


def _docker_backend(settings: Settings) -> Backend:
    from harness.execution.docker import DockerBackend

    return DockerBackend(settings)


def _remote_backend(settings: Settings) -> Backend:
    # Celery and redis are imported only here: a process without a broker never loads them.
    from harness.distributed.submit import RemoteBackend

    return RemoteBackend.from_settings(settings)


class Services:
    """Settings, scaffold library, roles, stores and the backend, each built once and closed on exit."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        backend_factory: BackendFactory | None = None,
        library: Library | None = None,
        llm_client: Any = None,
    ) -> None:
        self.settings = settings
        self.llm_client = llm_client  # an SDK client for tests (the fake Messages API); None: made per request
        self._stack = ExitStack()
        self._lock = threading.RLock()  # a plan's phases reach for these from several threads at once
        self._library = library
        self._library_given = library is not None  # a library handed in is kept as it is
        self._library_stamp: tuple[int, ...] = ()
        self._backend = backend  # given by the caller: the caller closes it
        self._backend_factory = backend_factory or _docker_backend
        self._history: HistoryStore | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, *, backend: Backend | None = None, llm_client: Any = None) -> Services:
        """Services for ``settings``; a given ``backend`` (kept open: the caller owns it) replaces the Docker one."""
        return cls(settings, backend=backend, llm_client=llm_client)

    # -- resources ------------------------------------------------------------------------------
    @property
    def library(self) -> Library:
        """The scaffold library under ``settings.scaffolds_dir``, loaded again when the folder changed.

        A long-lived process (``harness serve``, a worker) must see a scaffold promoted by another
        process: a promotion adds or replaces a folder, which changes these modification times.
        """
        with self._lock:
            stamp = _folder_stamp(self.settings.scaffolds_dir)
            if self._library is None or (self._library_given is False and stamp != self._library_stamp):
                from harness.generation.scaffolds import load_library

                self._library = load_library(self.settings.scaffolds_dir)
                self._library_stamp = stamp
            return self._library

    @cached_property
    def roles(self) -> dict[str, Role]:
        """The agent roles from ``settings.roles_file`` (read once)."""
        from harness.generation.agents import load_roles

        with self._lock:  # a plan's phases ask at once: one read, and every thread sees it
            return load_roles(self.settings.roles_file)

    @property
    def history(self) -> HistoryStore:
        """The history store in the data directory (opened once)."""
        with self._lock:
            if self._history is None:
                from harness.history.store import HistoryStore

                self._history = HistoryStore(self.settings.data_dir / "history.sqlite3")
            return self._history

    @cached_property
    def generated(self) -> GeneratedStore:
        """The generated-scripts store (the review queue and its trust records)."""
        from harness.review.store import GeneratedStore

        with self._lock:
            return GeneratedStore.from_settings(self.settings)

    @cached_property
    def runs(self) -> RunStore:
        """The runs folder: one folder per run."""
        from harness.runs import RunStore

        return RunStore(self.settings.runs_dir)

    @property
    def backend(self) -> Backend:
        """The execution backend: the one given, else (made on first use, closed on exit) a remote or Docker one."""
        with self._lock:
            if self._closed:
                raise RuntimeError("these services are closed")
            if self._backend is None:
                # A broker sends every run (exec, run, each plan phase) to the workers instead.
                factory = _remote_backend if self.settings.broker_url else self._backend_factory
                self._backend = self._stack.enter_context(factory(self.settings))
            return self._backend

    def llm_for(
        self,
        budget: Budget,
        *,
        on_text: Callable[[str], None] | None = None,
        on_call: Callable[[int], None] | None = None,
    ) -> Llm:
        """A per-request LLM client under ``budget`` (the caller closes it); streamed text to ``on_text``."""
        from harness.generation.llm import Llm

        return Llm(self.settings, budget, client=self.llm_client, on_text=on_text, on_call=on_call)

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Release what was built here (the backend it made, with its containers); safe to call twice."""
        with self._lock:
            self._closed = True
            self._stack.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _folder_stamp(folder: Path) -> tuple[int, ...]:
    """The modification times of a folder and its sub-folders: what a promotion changes."""
    try:
        with os.scandir(folder) as entries:
            children = sorted(e.stat().st_mtime_ns for e in entries if e.is_dir(follow_symlinks=False))
        return (folder.stat().st_mtime_ns, *children)
    except OSError:
        return ()
