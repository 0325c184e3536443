"""``timeout=``: a check that runs too long fails, naming the stage it was in, and the session
goes on. SIGALRM interrupts Python code (a forward that loops in Python, a stuck conversion);
a single C++ call that never returns cannot be interrupted from Python, which pytest-timeout's
thread method handles for the whole test."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class CheckTimedOut(BaseException):
    """Raised in the check when its time is up. A BaseException, so the stages' own
    ``except Exception`` handlers do not mistake it for a converter's error."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[bool]:
    """Arm a SIGALRM timer for ``seconds``; yields whether it was armed. It is not armed off
    the main thread, where the platform has no SIGALRM, or while another timer (pytest-timeout's
    signal method) is already counting down: that one is left alone."""
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if not usable:
        yield False
        return

    def expire(signum: int, frame: object) -> None:
        raise CheckTimedOut()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
