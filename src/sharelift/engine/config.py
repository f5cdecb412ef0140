"""How a round runs: `EngineConfig`, with the memory it costs."""

from __future__ import annotations

from dataclasses import dataclass

from sharelift.graph.drive import FRAGMENT_UNIT

MIB = 1024 * 1024
DEFAULT_CHUNK = 10 * MIB


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

    chunk_size: int = DEFAULT_CHUNK
    workers: int = 16
    policy: str = "newer"
    mirror: bool = False
    verify_target: bool = False
    attempts: int = 3
    """Tries per file for a hash mismatch, a file that changes while it is read, or a
    connection that breaks for longer than the client's own retries."""
    folder_tasks: int = 32

    def __post_init__(self) -> None:
        if self.chunk_size % FRAGMENT_UNIT or not 0 < self.chunk_size < 60 * MIB:
            raise ValueError(
                f"--chunk-size must be a multiple of 320 KiB below 60 MiB, not {self.chunk_size}"
            )
