"""A whole command's wall-time limit (`attn run --timeout`, `run(timeout=...)`).

The engines watch their own deadline while a kernel runs, and stop at the
operation that passes it (E1004 at that operation). Before the run, checking
a program and compiling it for the JIT can take long too; so the whole of
`run` is under a timer as well: when it fires, the phase under way (checking,
compiling, running, verifying) ends with E1004 at the kernel. The timer is a
SIGALRM, so it works in the main thread of a process on POSIX systems (other
threads and systems get the engines' own deadline only); it fires a little
after the engines' deadline, which then has the first word when a run is
what takes the time. Code in a native library (LLVM's optimizer, say) sees
the alarm only when it returns to Python: `attn` itself also ends a command
still busy HARD_STOP_S seconds past its limit (cli/run.py).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field

from .diagnostics import AttnError, Span
from .runtime import timeout_error

#: The alarm comes this long after the limit, so an engine's own E1004 (which says where) comes first.
GRACE_S = 0.25
#: `attn` ends a command this long past its limit if the alarm could not stop it (native code).
HARD_STOP_S = 5.0


class _Alarm(BaseException):
    """Raised by the timer; a BaseException so no `except Exception` on the way swallows it."""


@dataclass
class Deadline:
    """The limit of one command, and what it is doing now (for the message)."""

    seconds: float | None
    start: float = field(default_factory=time.monotonic)
    phase: str = "loading the program"
    span: Span | None = None

    def left(self) -> float | None:
        """Seconds left for an engine's own deadline (at least a millisecond), or None without a limit."""
        if not self.seconds:
            return None
        return max(1e-3, self.seconds - (time.monotonic() - self.start))

    def error(self) -> AttnError:
        span = self.span or Span("<command line>", 1, 1, 1, 2)
        return timeout_error(span, self.phase)


@contextlib.contextmanager
def time_limit(deadline: Deadline):
    """Run the block under deadline: past it, the block ends with deadline.error() (an AttnError)."""
    usable = (deadline.seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield deadline
        return

    def on_alarm(signum, frame):
        raise _Alarm()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, deadline.seconds + GRACE_S)
    try:
        yield deadline
    except _Alarm:
        raise deadline.error() from None
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        except _Alarm:  # it fired just as the block ended: the block's outcome stands
            signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
