"""Files and folders only their owner may read.

Reports name every file of a share, as the state store does: like the store (0600 in a 0700
folder), they are written 0600, and the folders sharelift creates for them are 0700. A folder
that exists already keeps its mode: its owner chose it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(folder: Path) -> None:
    """Create `folder` and every missing folder above it, 0700 each (whatever the umask).
    Raises OSError (FileExistsError when something else has its name)."""
    missing: list[Path] = []
    here = folder
    while not here.exists():
        missing.append(here)
        here = here.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue
        os.chmod(path, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    if not folder.is_dir():  # as mkdir(exist_ok=True) says it
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(folder))


def open_private(path: Path, **text: Any) -> IO[Any]:
    """Open `path` for writing, truncated, readable by its owner only (0600); `text` are
    `open`'s text arguments (encoding, newline), none for binary."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    os.fchmod(fd, FILE_MODE)  # a file that existed keeps its old mode through O_CREAT
    return os.fdopen(fd, "w" if text else "wb", **text)
