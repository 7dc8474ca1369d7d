"""Ctrl-C during a run: the first stops the script and keeps what it wrote; the second abandons the run.

The first SIGINT asks the run's backend (through ``stop``, an ``harness.app`` call) to have the
in-container supervisor stop the script and send /output, as it does at the time limit: the run
then ends ``interrupted`` with its outputs kept and marked partial, and the command exits 130. A
second SIGINT, or a first one when the run cannot be stopped that way (not started yet, or a
backend without the supervisor's stop), raises ``KeyboardInterrupt`` as before: collection is
abandoned and the container is still removed by the ``finally`` blocks it unwinds through.

The backend is never called from the signal handler itself (the handler may run in the middle of
the same engine client's own request): the handler only sets an event, and a helper thread calls
``stop``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["INTERRUPTED_EXIT", "first_ctrl_c_stops", "say_stopping"]

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C


def say_stopping() -> None:
    """The line shown on stderr when the first Ctrl-C is being obeyed."""
    from harness.cli.console import err_console

    err_console.print(
        "Interrupted: stopping the script and collecting what it wrote (Ctrl-C again to abandon it)", highlight=False
    )


@contextmanager
def first_ctrl_c_stops(stop: Callable[[], bool], notice: Callable[[], None] | None = None) -> Iterator[None]:
    """In the block, the first Ctrl-C calls ``stop`` (in a thread); a second, or False, raises KeyboardInterrupt."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is not signal.default_int_handler:
        # Only the main thread may handle signals; an ignored SIGINT (a background job) stays ignored.
        yield
        return
    fired = threading.Event()
    done = threading.Event()
    main = threading.main_thread().ident or 0

    def watch() -> None:
        fired.wait()
        if done.is_set():
            return
        if notice is not None:
            notice()
        if not stop() and not done.is_set():
            # Nothing to stop gracefully: as if Ctrl-C had been pressed twice. A real signal to the
            # main thread, so a blocking call there is interrupted too (interrupt_main would wait for it).
            signal.pthread_kill(main, signal.SIGINT)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if fired.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        fired.set()

    helper = threading.Thread(target=watch, name="harness-ctrl-c", daemon=True)
    helper.start()
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        done.set()
        fired.set()
        helper.join()
