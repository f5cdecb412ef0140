"""How a round runs: `EngineConfig`, with the memory it costs."""

from __future__ import annotations

from dataclasses import dataclass

from sharelift.config import check, default

MIB = 1024 * 1024


@dataclass(frozen=True)
class EngineConfig:
    """How a round runs.

    Memory: fragment buffers of at most `2 * workers * chunk_size` bytes (a worker sending a
    large file holds the fragment in flight and reads the next; 2 x 16 x 10 MiB = 320 MiB at
    the defaults when all sixteen send large files; a worker meeting only small files keeps
    buffers of their size) plus `4 * workers` queued file descriptions (each new small one with an
    upload session opened ahead), up to 80 folders waiting to be created, and the walk's
    current folders.
    """

    chunk_size: int = default("chunk_size")
    workers: int = default("workers")
    policy: str = default("on_conflict")
    mirror: bool = default("mirror")
    verify_target: bool = default("verify_target")
    remove_old_versions: bool = default("remove_old_versions")
    """After replacing a file, remove its older versions (`engine/versions.py`)."""
    prove_office_files: bool = default("prove_office_files")
    """Download an Office file a library rewrote, to prove its parts (`sharelift.office`); a
    download holds one piece in memory at a time and the file in a private temporary file."""
    attempts: int = 3
    """Tries per file for a hash mismatch, a file that changes while it is read, or a
    connection that breaks for longer than the client's own retries."""
    folder_tasks: int = 32

    def __post_init__(self) -> None:
        check(chunk_size=self.chunk_size, workers=self.workers, on_conflict=self.policy)
