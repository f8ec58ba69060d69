"""SIGTERM and SIGINT while a search runs: stop asking, keep what finished, leave cleanly.

SLURM sends SIGTERM at preemption and at the time limit, Kubernetes at eviction, a terminal SIGINT at
Ctrl-C. The first of them asks the search to stop. It interrupts the driver only where the driver waits
(for trials on Ray, or for a trial running in the driver process), never between a row's append and the
strategy's tell; anywhere else it is noted and the executor stops at its next wait or submit, after
handing over what has finished so that it is recorded. The driver then shuts Ray down and says how many
trials are recorded; rerunning the same command resumes (:mod:`archbench.search.driver`).

A second signal ends the process at once (rows already appended are durable; the study resumes as after a
SIGKILL). One that comes within :data:`REPEAT_S` of the first counts as the same: a scheduler that signals
every process of a job and a batch script that forwards the signal to the driver send it twice at once.

Ray's core worker installs a native failure handler for SIGTERM when the driver connects (absl's
``FailureSignalHandler``: ``logging.cc ... *** SIGTERM received ... PC: @``), after ``ray.init`` has set
a Python one that calls ``sys.exit``. :meth:`StopSignals.install` is therefore called after ``ray.init``
(by the executor); ``signal.signal`` replaces the native handler in the kernel's table too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)
REPEAT_S = 1.0  # a second signal this soon after the first is the same event, not "stop at once"


class Interrupted(BaseException):
    """A stop signal reached the search (a BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` in a trial or in Ray takes it for a failure)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class StopSignals:
    """The driver's handlers for SIGTERM and SIGINT (see the module docstring). Outside the main thread
    (``run_search`` called from a thread) nothing is installed and signals keep their handlers."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._first_at = 0.0
        self._waiting = False
        self._previous: dict[int, Any] = {}
        self.stderr_fd = 2  # where the "again" line goes (the executor points it past a muted fd 2)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in SIGNALS:
            self._previous.setdefault(sig, signal.getsignal(sig))
            signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            if time.monotonic() - self._first_at < REPEAT_S:
                return
            name = signal.Signals(signum).name
            line = f"archbench: {name} again: stopped at once; rerun the same command to resume\n"
            os.write(self.stderr_fd, line.encode())
            os._exit(128 + signum)
        self.signum, self._first_at = signum, time.monotonic()
        if self._waiting:
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop signal came."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """A stretch where the driver only waits: a signal interrupts it at once."""
        self.check()
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False
