"""Reading the small text files the user names (policy, baseline) without surprises."""

from __future__ import annotations

import errno
import os
import stat


def read_regular_file(path: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (at most `limit` + 1 of them).

    A FIFO or a device named by mistake would block a plain open() or read forever: it is
    opened without blocking and refused as an OSError whose strerror says why, like every
    other reason a file cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read() if limit is None else f.read(limit + 1)
    finally:
        os.close(fd)
