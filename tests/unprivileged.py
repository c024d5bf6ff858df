"""Run a piece of a test as an unprivileged user when the tests run as root (CI containers).

Root reads every file and writes into read-only folders, so permission tests would prove
nothing there; as `nobody` they do. `nobody` cannot enter pytest's folders (mode 0700 under
/tmp/pytest-of-root), so such tests work in a folder from `shared_folder()`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest


def nobody() -> tuple[int, int]:
    """(uid, gid) of the unprivileged user; skips the test when there is none."""
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no user 'nobody' to drop privileges to")
    return entry.pw_uid, entry.pw_gid


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A fresh folder that `nobody` can enter and read, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="relrocheck-unprivileged-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        for path in folder.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def in_child_as_nobody(check: Callable[[], bool]) -> None:
    """Run `check` in a forked child with nobody's ids; fail unless it returns True."""
    uid, gid = nobody()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            code = 0 if check() else 1
        except BaseException:  # noqa: BLE001 - any failure is the child's exit code
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the check failed as an unprivileged user"


def cli_as_nobody(argv: list[str], warm_up: list[str], tmp_path: Path
                  ) -> subprocess.CompletedProcess[str]:
    """`relrocheck ARGV` run by `relrocheck.cli.main` in a child with nobody's ids.

    `warm_up` is a run of the same command, as root in this process, that imports every
    module the command needs: the child may not be able to read the interpreter's library.
    """
    import sys

    from relrocheck.cli import main

    with open(os.devnull, "w") as quiet:
        saved, sys.stdout = sys.stdout, quiet
        try:
            main(list(warm_up))
        finally:
            sys.stdout = saved
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as out_file, open(err, "w") as err_file:
        uid, gid = nobody()
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                sys.stdout, sys.stderr = out_file, err_file  # pytest captures the originals
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                code = main(list(argv))
            except BaseException:  # noqa: BLE001 - the parent sees exit code 3
                pass
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    return subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status),
                                       out.read_text(), err.read_text())
