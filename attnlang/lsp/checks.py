"""Checking documents off the language server's loop, a newer version cancelling the older check.

The server's loop reads the client's messages; if it checked each document
itself, one slow document (a file of ten thousand lines, a program the
checker takes seconds over) would hold up every other answer. So each check
runs in a thread of its own: the loop hands it the document's text and
version and goes on, and the result is published back on the loop. A newer
version of a document cancels the check of the older one: its result would
be stale, and its thread stops at once (an exception raised in it at the next
line of Python it runs) instead of using a core for nothing. The checks of
different documents run side by side, so a small document's diagnostics do
not wait for a large one's.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable


class Cancelled(BaseException):
    """Raised in a check's thread when a newer version of its document arrives (a BaseException, so no
    `except Exception` in the checker swallows it)."""


@dataclass
class _Job:
    uri: str
    version: int | None
    text: str
    path: str
    after: Callable[[str, str], None] | None = None
    thread: threading.Thread | None = None
    checking: bool = True  # while true, a newer version may cancel it (under DocumentChecks._lock)
    done: threading.Event = field(default_factory=threading.Event)


class DocumentChecks:
    """Runs check(text, path) for each submitted document version in a thread, and hands the result to
    publish(uri, version, result) through post (the server's loop's call_soon_threadsafe; a plain call
    without one). A submitted version cancels the check of the document's earlier version; cancel(uri)
    (a closed document) cancels it with nothing published. A check that fails hands publish the result of
    failed(exception) instead."""

    def __init__(self, check: Callable[[str, str], object], publish: Callable[[str, int | None, object], None],
                 failed: Callable[[BaseException], object], post: Callable[[Callable[[], None]], None] | None = None):
        self._check, self._publish, self._failed = check, publish, failed
        self._post = post or (lambda f: f())
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}

    def submit(self, uri: str, version: int | None, text: str, path: str,
               after: Callable[[str, str], None] | None = None) -> threading.Event:
        """Check this version of the document in a thread of its own; after(text, path), if given, runs in
        that thread once the result is published (the hover costs' prefetch). Returns an event set when
        the check has ended, published or cancelled."""
        job = _Job(uri, version, text, path, after)
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"attn-check {uri}", daemon=True)
        with self._lock:
            self._stop(self._jobs.get(uri))
            self._jobs[uri] = job
        job.thread.start()
        return job.done

    def cancel(self, uri: str) -> None:
        """Stop the document's check, if one runs; nothing is published for it."""
        with self._lock:
            self._stop(self._jobs.pop(uri, None))

    def running(self) -> int:
        """Checks under way (for tests and the log)."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.checking)

    def _stop(self, job: _Job | None) -> None:
        """Cancel job's check (the caller holds the lock): past its check, a job only publishes if it is
        still the document's latest, so only a job still checking needs stopping."""
        if job is None or not job.checking:
            return
        job.checking = False
        if job.thread is not None and job.thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(job.thread.ident), ctypes.py_object(Cancelled))

    def _run(self, job: _Job) -> None:
        try:
            try:
                result = self._check(job.text, job.path)
            except Exception as exc:  # a bug in attnlang: publish it where the user looks, keep serving
                logging.getLogger("attn.lsp").exception("checking %s failed", job.uri)
                result = self._failed(exc)
            with self._lock:
                latest = self._jobs.get(job.uri) is job and job.checking
                job.checking = False
                if latest:
                    del self._jobs[job.uri]
            if latest:
                self._post(lambda: self._publish(job.uri, job.version, result))
                if job.after is not None:
                    job.after(job.text, job.path)
        except Cancelled:
            pass
        finally:
            job.done.set()
