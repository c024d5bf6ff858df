"""Part of a large library's measurement done on a second core, by a forked child.

Python runs one thread of bytecode at a time, and a post-link check waits for its slowest
step: on a library of hundreds of thousands of relocations, the parts that need no result of
each other (the attribution on one side; probable objects and string targets on the other)
run in two processes. The child inherits the measurement's columns by fork (nothing is
copied up front), returns its result pickled through a pipe and exits without running any
clean-up of its parent's.

It never changes a number: when fork is not available, the process may use only one CPU,
or anything goes wrong in the child (an error, a signal, memory), the parent computes the
same result itself.
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import struct
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Beside(Generic[T]):
    """`work()`, started in a forked child when `worth` and possible; `result()` gives its
    value (computed here after all if the child did not deliver it). Used as a context
    manager, so that a child whose parent failed does not outlive the failure."""

    def __init__(self, work: Callable[[], T], worth: bool = True) -> None:
        self._work = work
        self._child: tuple[int, int] | None = None
        if not worth or not hasattr(os, "fork") or _cpus() < 2:
            return
        try:
            readable, writable = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:  # EAGAIN under a process limit, ENOMEM: do the work here
            os.close(readable)
            os.close(writable)
            return
        if pid == 0:
            self._serve(readable, writable)
        os.close(writable)
        self._child = (pid, readable)

    def _serve(self, readable: int, writable: int) -> None:
        """In the child: do the work, send its value, exit at once (no atexit, no flush of
        the parent's buffers, no output of its own)."""
        status = 1
        try:
            os.close(readable)
            payload = pickle.dumps(self._work(), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(payload)
            while view:
                view = view[os.write(writable, view):]
            status = 0
        except BaseException:  # noqa: BLE001 - the parent redoes the work and reports errors
            pass
        finally:
            os._exit(status)

    def __enter__(self) -> "Beside[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        """Stop a child whose result is no longer wanted (the parent failed first)."""
        if self._child is None:
            return
        pid, readable = self._child
        self._child = None
        os.close(readable)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)

    def result(self) -> T:
        if self._child is None:
            return self._work()
        pid, readable = self._child
        self._child = None
        chunks = []
        try:
            while chunk := os.read(readable, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(readable)
            _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            try:
                return pickle.loads(b"".join(chunks))  # type: ignore[no-any-return]
            except Exception:  # noqa: BLE001 - a truncated payload: fall through
                pass
        return self._work()


class Halves:
    """Indices 0 .. n - 1 shared out between the child, from the front, and the parent, from
    the back, until they meet: neither has to guess how long the other's own work takes.

    Each side publishes how far it got in a page both processes map (made before the fork),
    after finishing an index: at worst both do the one index they reach at the same time.
    The same iterators serve when no child was forked (the front then takes what is left).
    """

    _COUNTERS = struct.Struct("qq")  # front: first index not yet done; back: last done

    def __init__(self, n: int) -> None:
        self._n = n
        self._shared = mmap.mmap(-1, self._COUNTERS.size)
        self._COUNTERS.pack_into(self._shared, 0, 0, n)

    def _counters(self) -> tuple[int, int]:
        return self._COUNTERS.unpack_from(self._shared, 0)  # type: ignore[return-value]

    def front(self) -> Iterator[int]:
        index = 0
        while index < self._counters()[1]:
            yield index
            index += 1
            struct.pack_into("q", self._shared, 0, index)

    def back(self) -> Iterator[int]:
        index = self._n
        while index > self._counters()[0]:
            index -= 1
            yield index
            struct.pack_into("q", self._shared, 8, index)
