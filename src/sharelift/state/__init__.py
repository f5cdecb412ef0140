"""The state store: what every run of every job did, in one SQLite file."""

from sharelift.state.store import (
    ItemRecord,
    JobRecord,
    RoundCount,
    RoundRecord,
    StateError,
    StateStore,
    UploadSessionRecord,
    parent_of,
)

__all__ = [
    "ItemRecord",
    "JobRecord",
    "RoundCount",
    "RoundRecord",
    "StateError",
    "StateStore",
    "UploadSessionRecord",
    "parent_of",
]
