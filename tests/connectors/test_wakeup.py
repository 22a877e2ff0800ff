"""`Wakeup`: a thread sleeps until it is set, a child process exits, or a signal arrives;
real processes and real signals, no polling in between."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from reconciler.connectors.wakeup import PIDFD, Wakeup


def test_set_from_another_thread_wakes_a_long_wait() -> None:
    wake = Wakeup()
    threading.Timer(0.1, wake.set).start()
    assert wake.wait(30) is True  # woken (a timeout answers False)
    assert wake.is_set()
    wake.clear()
    assert not wake.is_set() and wake.wait(0.01) is False


@pytest.mark.skipif(not PIDFD, reason="pidfd_open needs Linux 5.3+")
@pytest.mark.slow
def test_a_child_exit_wakes_a_long_wait_without_reaping_it() -> None:
    wake = Wakeup()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    try:
        assert wake.wait(30, pids=[child.pid]) is True  # woken (a timeout answers False)
        # not reaped by the wait: the owner still collects the exit code
        assert child.wait(5) == 0
    finally:
        child.kill()
        child.wait()
    assert wake.wait(0.01, pids=[]) is False  # the fd of the reaped child is gone


def test_a_signal_wakes_a_long_wait_in_the_main_thread() -> None:
    wake = Wakeup()
    got: list[int] = []
    old_handler = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    old_fd = signal.set_wakeup_fd(-1)
    try:
        wake.wake_on_signals()
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert wake.wait(30) is True  # woken (a timeout answers False)
        assert got == [signal.SIGUSR1]
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGUSR1, old_handler)
