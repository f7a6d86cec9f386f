"""An exclusive lock on a run folder, so that two processes never write one run.

The lock is ``RUN/.lock``, held with ``flock`` (POSIX advisory lock) for as long as the process
runs and holding the holder's PID, host and start time as JSON. The kernel drops the lock when
the holder dies (``kill -9`` included), so a lock file left behind by a dead process is stale by
construction and is simply taken over; the file's content only serves to name the holder in the
refusal.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None

LOCK_NAME = ".lock"


class RunLockedError(ValueError):
    """The run folder is locked by another live process."""


class RunLock:
    """Exclusive, non-blocking lock on ``run_dir`` (see the module docstring).

    Parameters
    ----------
    run_dir : Path
        The run folder; it must exist.

    Raises
    ------
    RunLockedError
        From :meth:`acquire` when another process holds the lock (the message names its PID).
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if fcntl is None:  # pragma: no cover
            return self
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunLockedError(
                    f"{self.path.parent} is in use by {self._holder()}; wait for it to finish "
                    f"or stop it (lock file {self.path})"
                ) from None
            # the previous holder may have removed the file between our open and flock: lock the file on disk
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
                os.ftruncate(fd, 0)
                os.write(fd, (json.dumps(info) + "\n").encode())
                self._fd = fd
                return self
            os.close(fd)
        raise RunLockedError(f"could not lock {self.path}: it keeps being replaced")  # pragma: no cover

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text())
            return f"process {info['pid']} on {info.get('host', '?')} (since {info.get('since', '?')})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:  # noqa: PYI034
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
