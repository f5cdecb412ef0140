"""Run locks: two runs of the same job (or job file) never overlap.

A lock is an exclusive, non-blocking OS lock (`flock` on POSIX, `msvcrt.locking` on Windows) on
a small file beside the state store. The operating system drops it when the process ends, even
when it is killed, so there is no stale lock to clean up after a crash; the file itself stays
(removing it would race with the next run). The holder writes its pid and host into the file so
that the refused run can say who has it.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from sharelift.errors import BusyError
from sharelift.state import StateError

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class RunLock:
    """`with RunLock(path, "job 3"):` holds the lock or raises BusyError naming the holder.

    Not re-entrant: a second RunLock on the same path, even in the same process, is refused.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        if not _try_lock(fd):
            holder = ""
            try:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            except OSError:
                pass  # Windows: the holder's locked byte cannot be read
            finally:
                os.close(fd)
            raise BusyError(
                f"{self.what} is already running ({holder or 'another process'}); "
                "this run did nothing"
            )
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_path(state_path: Path, name: str) -> Path:
    """Where the lock called `name` of the state store at `state_path` lives."""
    return state_path.with_name(state_path.name + ".locks") / f"{name}.lock"


__all__ = ["RunLock", "lock_path"]
