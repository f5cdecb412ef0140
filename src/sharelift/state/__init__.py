"""The state store: what every run of every job did, in one SQLite file."""

from sharelift.state.store import (
    ItemRecord,
    JobRecord,
    KnownItem,
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
    "KnownItem",
    "RoundCount",
    "RoundRecord",
    "StateError",
    "StateStore",
    "UploadSessionRecord",
    "parent_of",
]
