"""The state store: what every run of every job did (DESIGN.md, "The flow of data").

    interface.py   StateStore, the Protocol every backend keeps (its contract is documented
                   there), and StateError
    records.py     the values it deals in: ItemStatus, RoundStatus and the record types
    sqlite.py      the SQLite backend (one file on one machine): jobs, rounds, upload sessions
    sqlite_items.py    its items; sqlite_packages.py: its Migration API packages;
                   sqlite_target.py: files moved aside and old versions to remove;
                   sqlite_db.py: its connection, writes grouped into commits
    schema.py      the SQLite schema, as named migrations applied in order (item_history and
                   round_totals keep what each round did; round_samples its throughput;
                   0007_dashboard: throttle waits, report folders, samples by time;
                   0008-0010: stored versions, version prunes, files moved aside;
                   0011_package_events: what the Migration API service said)

Callers open a store with `open_state` and use it through `StateStore` only.
"""

from __future__ import annotations

import os

from sharelift.state.interface import StateError, StateStore
from sharelift.state.records import (
    ItemRecord,
    ItemStatus,
    JobRecord,
    KnownItem,
    MigrationPackageRecord,
    MovedAside,
    OutcomeCount,
    PackageCount,
    PackageEventRecord,
    PackageFileRecord,
    PackageStatus,
    RoundCount,
    RoundRecord,
    RoundSample,
    RoundStatus,
    ServiceJob,
    ServiceJobState,
    TargetKnown,
    UploadSessionRecord,
    VerifiedBy,
    parent_of,
)
from sharelift.state.sqlite import SqliteStateStore


def open_state(
    location: str | os.PathLike[str],
    *,
    readonly: bool = False,
    commit_every: int = 500,
    commit_interval: float = 0.5,
) -> StateStore:
    """Open the state store at `location`, creating it (and bringing its schema up to date)
    unless `readonly`, where it must exist and nothing is written.

    `location` is a file path (SQLite). Writes are committed in groups of at most
    `commit_every` writes or `commit_interval` seconds. Raises StateError naming the store when
    it cannot be opened, is not a sharelift state store, or is a URL of a kind not supported.
    """
    text = os.fspath(location)
    scheme, sep, _ = text.partition("://")
    if sep and scheme.isalpha():
        raise StateError(f"the state store {scheme}://… is not supported; give the path of a file")
    return SqliteStateStore.open(
        text, readonly=readonly, commit_every=commit_every, commit_interval=commit_interval
    )


__all__ = [
    "ItemRecord",
    "ItemStatus",
    "JobRecord",
    "KnownItem",
    "MigrationPackageRecord",
    "MovedAside",
    "OutcomeCount",
    "PackageCount",
    "PackageEventRecord",
    "PackageFileRecord",
    "PackageStatus",
    "RoundCount",
    "RoundRecord",
    "RoundSample",
    "RoundStatus",
    "ServiceJob",
    "ServiceJobState",
    "StateError",
    "StateStore",
    "TargetKnown",
    "UploadSessionRecord",
    "VerifiedBy",
    "open_state",
    "parent_of",
]
