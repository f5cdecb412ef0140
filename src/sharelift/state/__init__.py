"""The state store: what every run of every job did (DESIGN.md, "The flow of data").

    interface.py   StateStore, the Protocol every backend keeps (its contract is documented
                   there), and StateError
    records.py     the values it deals in: ItemStatus, RoundStatus and the record types
    sqlite.py      the SQLite backend (one file on one machine): opening it, and what it
                   does its own way; sqlite_items.py reads its items, sqlite_db.py is its
                   connection (writes grouped into commits)
    postgres.py    the PostgreSQL backend (one database for a cluster), the same way;
                   postgres_items.py, postgres_db.py

    written once for both backends, with `?` marks (portable.py), run through the backend's
    connection:
    write_groups.py    when a group of writes is committed
    item_writes.py     the writes to items
    job_rows.py    jobs, rounds and their samples, upload sessions, the integrity check
    package_rows.py    the Migration API's packages
    target_rows.py     files moved aside and old versions to remove
    unit_rows.py   units of work and workers (leases, heartbeats)

    schema.py      the schema, as named migrations applied in order, for both backends
                   (item_history and round_totals keep what each round did; round_samples
                   its throughput; migration_packages the Migration API's packages;
                   0007_dashboard throttle waits, report folders, samples by time;
                   0008-0010 stored versions, version prunes, files moved aside;
                   0011_package_events what the Migration API service said; 0012_cluster
                   units and workers, a cluster's leases and heartbeats; 0013_package_units
                   a package's unit and, on a cluster, its key until its job ends)

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
    NewUnit,
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
    UnitCount,
    UnitRecord,
    UnitStatus,
    UploadSessionRecord,
    VerifiedBy,
    WorkerRecord,
    parent_of,
)
from sharelift.state.sqlite import SqliteStateStore
from sharelift.urls import hide_password, is_url

URL_SCHEMES = ("postgresql", "postgres")
"""The URL schemes `open_state` takes (PostgreSQL); anything else that is not a URL is a path."""


def open_state(
    location: str | os.PathLike[str],
    *,
    readonly: bool = False,
    commit_every: int = 500,
    commit_interval: float = 0.5,
) -> StateStore:
    """Open the state store at `location`, creating it (and bringing its schema up to date)
    unless `readonly`, where it must exist and nothing is written.

    `location` is a file path (SQLite, for one machine) or a `postgresql://` URL (PostgreSQL,
    for a cluster; libpq's URL form, its password never shown). Writes are committed in groups
    of at most `commit_every` writes or `commit_interval` seconds. Raises StateError naming the
    store when it cannot be opened, is not a sharelift state store, or is a URL of a kind not
    supported.
    """
    text = os.fspath(location)
    if is_url(text):
        scheme = text.partition("://")[0].lower()
        if scheme not in URL_SCHEMES:
            raise StateError(
                f"the state store {hide_password(text)} is not supported; give the path of a "
                "file (SQLite) or a postgresql:// URL"
            )
        from sharelift.state.postgres import PostgresStateStore

        return PostgresStateStore.open(
            text, readonly=readonly, commit_every=commit_every, commit_interval=commit_interval
        )
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
    "NewUnit",
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
    "UnitCount",
    "UnitRecord",
    "UnitStatus",
    "UploadSessionRecord",
    "VerifiedBy",
    "WorkerRecord",
    "open_state",
    "parent_of",
]
