"""The CLI's Ctrl-C rule: the first asks for a graceful stop (off the signal handler), the second abandons."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from harness.cli.interrupt import first_ctrl_c_stops


def test_the_first_ctrl_c_calls_stop_in_another_thread_and_the_block_goes_on() -> None:
    called: list[str] = []
    stopped = threading.Event()

    def stop() -> bool:
        called.append(threading.current_thread().name)
        stopped.set()
        return True

    before = signal.getsignal(signal.SIGINT)
    with first_ctrl_c_stops(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stopped.wait(10)
    assert called == ["harness-ctrl-c"]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_abandons_with_keyboard_interrupt() -> None:
    release = threading.Event()
    entered = threading.Event()

    def stop() -> bool:
        entered.set()
        release.wait(10)  # a stop still under way when the second Ctrl-C comes
        return True

    with pytest.raises(KeyboardInterrupt), first_ctrl_c_stops(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert entered.wait(10)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(10)  # interrupted by the handler's KeyboardInterrupt
        finally:
            release.set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nothing_to_stop_gracefully_is_a_plain_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt), first_ctrl_c_stops(lambda: False):
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(10)


def test_an_ignored_sigint_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with first_ctrl_c_stops(lambda: pytest.fail("stop must not be called")):
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
