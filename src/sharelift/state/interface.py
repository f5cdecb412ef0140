"""The state store's interface: what the engine, the reports, `status` and bulk runs may ask of it.

The state store is the spine of a migration (DESIGN.md, "The flow of data"): every stage reads
and writes it, so a run may stop at any instant and the next one resumes. `StateStore` is the
contract every backend keeps (SQLite, `sharelift.state.sqlite`, for one machine; PostgreSQL,
`sharelift.state.postgres`, for several); callers get one from `sharelift.state.open_state` and
never learn which backend it is. It is made of four parts, one protocol each: `RunStore` (the
store's lifetime, jobs, rounds), `ItemStore` (items and what the engine keeps for them),
`UnitStore` (a cluster's units and workers) and `PackageStore` (Migration API packages).

The contract, for every backend:

- **Write grouping.** Writes may be grouped and committed together (for speed: a run of 100,000
  small files must not pay for 100,000 durable commits). A group is committed after a bounded
  time or number of writes, on `flush()` and on `close()`; methods that say "committed before
  returning" flush themselves. Losing the last uncommitted group in a crash is safe by
  construction: the engine writes the target first and the state second, and on resume it
  compares an item that was in flight with the target before uploading it again (DESIGN.md
  invariant 2).
- **One owner per object.** A store object belongs to one thread (the engine's event loop).
  Other processes may open the same store at the same time (`sharelift status` while a run
  writes); they see what was committed.
- **Idempotence.** Every write sets values rather than adding to them (except `mark_started`,
  which counts attempts): repeating a write after a crash leaves the same row.
- **Privacy.** Upload URLs are bearer credentials: a backend keeps them private (the SQLite file
  is 0600) and never shows them in a repr or an error.
- **Errors.** Opening raises `StateError` naming the store (a database URL shown without its
  password); a programming error (an unknown status or counter) raises ValueError.
- **Units and leases** (a cluster, `sharelift.cluster`). Each method of that part commits
  before returning (pending grouped writes first). Leases are measured on the store's clock
  (`store_time`), so the workers' clocks need not agree; every change to a leased unit names
  its owner and changes nothing when another worker holds it now (a worker whose lease
  lapsed learns it there and stops).

- **History.** An item row holds its last round's outcome; a round's reports must still be
  rebuilt exactly after later rounds changed its items (`round_items`, `round_counts`). A
  backend keeps an item's outcome in a round before a later round changes the item (SQLite:
  a trigger copies the row to `item_history`; PostgreSQL: a trigger function does), and counts
  a round when it closes.

Rows are identified by an integer id (`row`), stable for the life of the item.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, Self

from sharelift.errors import ShareliftError
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
    TargetKnown,
    UnitCount,
    UnitRecord,
    UnitStatus,
    UploadSessionRecord,
    WorkerRecord,
)


class StateError(ShareliftError):
    """The state store cannot be opened or is not a sharelift state store."""

    exit_code = 2


class RunStore(Protocol):
    """The store's lifetime, its jobs and their rounds (part of `StateStore`)."""

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is pending and release the store; later calls fail."""

    def flush(self) -> None:
        """Commit every pending write now."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None:
        """`close()`."""

    def check(self) -> list[str]:
        """Consistency problems, as sentences; empty when the store is sound (a `done` file
        without a target id and hash; a `done` item still holding an upload session)."""

    # --- jobs ----------------------------------------------------------------------------------

    def ensure_job(
        self, key: str, source: str, target: str, options: dict[str, Any] | None = None
    ) -> JobRecord:
        """The job with this key, created if new (its source, target and options refreshed
        if not). Committed before returning."""

    def set_job_target(
        self, job_id: int, drive_id: str, folder_id: str | None, folder_path: str
    ) -> None:
        """Remember where the job's target resolved to. Committed before returning."""

    def job_by_key(self, key: str) -> JobRecord | None: ...

    def job(self, job_id: int) -> JobRecord | None: ...

    def jobs(self) -> list[JobRecord]:
        """Every job, oldest first."""

    # --- rounds --------------------------------------------------------------------------------

    def start_round(self, job_id: int, *, log_path: str = "") -> RoundRecord:
        """Open the job's next round (numbered from 1), `running`, writing its log to
        `log_path` ("" for none). A round of the job still marked running (its process died)
        is closed as `interrupted` first, its counts kept as `finish_round` keeps them.
        Committed before returning."""

    def update_round(self, round_id: int, **counters: float) -> None:
        """Refresh a running round's heartbeat and progress counters (any of files_total,
        bytes_total, files_done, bytes_done, files_skipped, files_failed, throttled, and
        throttle_wait in seconds; another name raises ValueError)."""

    def finish_round(self, round_id: int, status: RoundStatus) -> None:
        """Close a round as completed, failed or interrupted (`running` raises ValueError),
        keeping what its walk met counted (`round_counts` answers from that from now on).
        Committed before returning."""

    def add_round_sample(self, round_id: int, sample: RoundSample) -> None:
        """Keep a running round's counters at one instant (the engine writes one every few
        seconds, with its progress counters): a report's throughput chart and a dashboard
        read them. A sample of the same instant replaces the earlier one."""

    def round_samples(self, round_id: int) -> Iterator[RoundSample]:
        """A round's samples, oldest first, streamed."""

    def samples_since(self, after: str) -> Iterator[tuple[int, RoundSample]]:
        """(round id, sample) for the samples of every round taken at an instant later than
        `after` (ISO UTC; "" for all), oldest first, streamed. A dashboard asks for what is
        new since its last look: only those rows are read, not every round's."""

    def set_round_reports(self, round_id: int, folder: str) -> None:
        """Remember the folder the round's reports are written to (absolute), before they
        are written. Committed before returning."""

    def latest_rounds(self) -> list[RoundRecord]:
        """The last round of every job that has one, by job id: one small query, whatever
        the number of items (a dashboard asks every few seconds)."""

    def round(self, round_id: int) -> RoundRecord | None: ...

    def rounds(self, job_id: int | None = None) -> list[RoundRecord]:
        """The rounds of one job in order, or of every job."""


class ItemStore(Protocol):
    """Items, what became of them, and what the engine keeps for them at the target: upload
    sessions, files moved aside, old versions to remove (part of `StateStore`)."""

    # --- items: reading ------------------------------------------------------------------------

    def item(self, job_id: int, path: bytes) -> ItemRecord | None: ...

    def item_by_row(self, row: int) -> ItemRecord | None: ...

    def children(self, job_id: int, parent: bytes) -> dict[bytes, KnownItem]:
        """Every known item directly inside the folder `parent` (b"" for the source's top), by
        path. Planning calls it once per folder; it must cost one query, not one per item."""

    def items(self, job_id: int, status: ItemStatus | None = None) -> Iterator[ItemRecord]:
        """The job's items (of one status), in path order, streamed."""

    def round_items(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        """The items a round changed, as the round left them (whatever later rounds did to
        them since), in path order, streamed; an item the round only saw unchanged is not
        among them."""

    def round_counts(self, job_id: int, round_id: int) -> list[RoundCount]:
        """What a round's walk met, counted by kind, status, changed-or-only-seen,
        with-or-without a note and started-or-not, over the items the round changed or saw;
        without reading every item into the caller. For a closed round: as it was when the
        round closed."""

    def outcome_counts(self, job_id: int) -> list[OutcomeCount]:
        """The job's items as they stand now, counted by kind, status and code, with an
        example of each group: what is at the target and what is not, and why. Without
        reading every item into the caller."""

    def noted_items(self, job_id: int, status: ItemStatus) -> Iterator[ItemRecord]:
        """The job's items of one status that carry a code (for `done`: a note, such as the
        rule a rename fixed), in path order, streamed."""

    def count_items(self, job_id: int) -> dict[str, int]:
        """How many of the job's items are in each status (statuses with none are absent)."""

    def unseen_since(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        """Items (not deleted) that the round's walk did not see: gone from the source. In
        path order, streamed."""

    # --- items: writing ------------------------------------------------------------------------

    def upsert_item(
        self,
        job_id: int,
        path: bytes,
        kind: str,
        *,
        status: ItemStatus,
        round_id: int,
        target_path: str | None = None,
        size: int | None = None,
        mtime_ns: int | None = None,
    ) -> int:
        """Create an item, or refresh it as this round's walk saw it; returns its row. A
        refresh keeps what is known of the target (item id, eTag, hash) so that planning can
        compare, and marks the item seen by the round."""

    def mark_seen(self, rows: Iterable[int], round_id: int) -> None:
        """This round's walk saw these items, unchanged (for --mirror)."""

    def mark_folder_seen(self, job_id: int, parent: bytes, round_id: int) -> None:
        """This round's walk saw every item the store knows directly inside the folder
        `parent`, unchanged: `mark_seen` for all of them, written once for the folder. Only
        for a folder none of whose known items is missing from the walk."""

    def mark_started(self, row: int, round_id: int) -> None:
        """An attempt at the target begins: the item is pending again, its attempts counted
        (so a crash mid-way is visible on resume)."""

    def record_done(
        self,
        row: int,
        *,
        round_id: int,
        item_id: str,
        etag: str | None,
        quick_xor: str | None,
        size: int | None,
        mtime_ns: int | None,
        note_code: str | None = None,
        note: str | None = None,
        verified_by: str | None = None,
        stored_size: int | None = None,
        stored_hash: str | None = None,
    ) -> None:
        """The target holds this item, verified: the only way an item becomes `done`.
        `note_code` / `note` keep a warning with it (renamed by a rule: which rule and why).
        For a file, `verified_by` is the `VerifiedBy` check that proved it; `stored_size` and
        `stored_hash` describe the version the target stores (None: the same as `size` and
        `quick_xor`, the bytes read)."""

    def note_target_item(self, row: int, item_id: str) -> None:
        """The target holds an item this row's upload made that is not verified yet (an
        empty file, put first and given its times next): remembered at once, so that a run
        killed in between is followed by one that replaces it as its own, not one that meets
        a stranger. The status is left as it is. Committed before returning."""

    def record_outcome(
        self, row: int, *, round_id: int, status: ItemStatus, code: str, message: str
    ) -> None:
        """The item failed, or was skipped, blocked or deleted; the message says why. Other
        statuses raise ValueError."""

    # --- items: reconciling with the target (--verify-target) ----------------------------------

    def done_at_target(self, job_id: int, item_ids: Sequence[str]) -> list[TargetKnown]:
        """The job's `done` items among the given target ids (ids the job does not know are
        left out), each with the hash of the version the target stores. Called once per page
        of the target's delta: one query, through an index."""

    def mark_at_target(self, rows: Iterable[int], round_id: int) -> None:
        """The round found these items at the target (for `done_not_at_target`)."""

    def done_not_at_target(self, job_id: int, round_id: int) -> Iterator[TargetKnown]:
        """The job's `done` items that the round did not find at the target, streamed. The
        caller may write to the store (mark them failed) while it iterates."""

    # --- old versions --------------------------------------------------------------------------

    def mark_prune(self, row: int, wanted: bool) -> None:
        """Mark (before a replacement is sent) or clear (once done) that the older versions
        of this item's file at the target are to be removed. Committed before returning."""

    def prunes_pending(self, job_id: int) -> list[tuple[int, str]]:
        """(row, target item id) of the job's done files still marked by `mark_prune`."""

    def pruned_among(self, key: str, item_ids: Sequence[str]) -> set[str]:
        """Those of `item_ids` recorded by `record_pruned` under `key` (one query)."""

    def record_pruned(self, key: str, item_ids: Iterable[str]) -> None:
        """These files under the folder `key` have no older versions left."""

    def forget_pruned(self, key: str) -> None:
        """A prune of the folder `key` is complete: forget its files. Committed before
        returning."""

    # --- files moved aside ---------------------------------------------------------------------

    def save_moved_aside(self, aside: MovedAside) -> None:
        """Remember, before it is renamed, a file at the target that goes aside while a new
        one replaces it (replaces what the row held). Committed before returning."""

    def moved_aside(self, row: int) -> MovedAside | None: ...

    def moved_aside_of_job(self, job_id: int) -> list[MovedAside]:
        """Every file of the job moved aside and not settled yet."""

    def drop_moved_aside(self, row: int) -> None:
        """The file moved aside is deleted or back under its name. Committed before
        returning."""

    # --- upload sessions -----------------------------------------------------------------------

    def save_upload_session(
        self, row: int, upload_url: str, expires_at: str | None, size: int, mtime_ns: int
    ) -> None:
        """Persist a session the moment it exists, replacing any the item held, so that a
        killed run can resume or cancel it. Committed before returning."""

    def upload_session(self, row: int) -> UploadSessionRecord | None: ...

    def drop_upload_session(self, row: int) -> None:
        """Forget the item's session (finished or cancelled); no error when there is none."""

    def upload_sessions(self, job_id: int) -> list[UploadSessionRecord]:
        """Every session the job's items hold."""


class UnitStore(Protocol):
    """Units of work, their leases and the workers (a cluster; part of `StateStore`)."""

    # --- units of work and workers (a cluster) -------------------------------------------------

    def store_time(self) -> float:
        """Now on the store's clock, in seconds since the epoch."""

    def add_unit(self, unit: NewUnit, *, owner: str | None = None) -> tuple[int, bool] | None:
        """Record a unit, `queued` and not yet handed to the broker: (its id, True); when a
        unit with its key exists, (that one's id, False). With `owner`, only while `owner`
        holds the lease of `unit.parent`: None when it does not (a lapsed owner adds nothing)."""

    def unit(self, unit_id: int) -> UnitRecord | None: ...

    def units(
        self,
        *,
        run: str | None = None,
        round_id: int | None = None,
        parent: int | None = None,
        status: UnitStatus | None = None,
    ) -> list[UnitRecord]:
        """The units that match every filter given, in id order."""

    def claim_unit(self, unit_id: int, owner: str, ttl: float) -> UnitRecord | None:
        """Take the unit's lease for `ttl` seconds and mark it running, counting an attempt:
        when it is queued (and due: `not_before` passed), or running under a lease that has
        lapsed or is `owner`'s already. None when another worker holds a live lease, or the
        unit is finished, not due or unknown."""

    def unit_counts(self) -> list[UnitCount]:
        """Units by round and status, for the last round of every job, and for the unfinished
        units no round holds yet: one small query, whatever the number of items (a dashboard
        asks every few seconds)."""

    def renew_lease(self, unit_id: int, owner: str, ttl: float, **counters: int) -> bool:
        """The owner's heartbeat: the lease runs `ttl` seconds from now, and the unit's
        progress counters (`UNIT_COUNTERS`) are saved; the unit's round, while running, takes
        the sums of its units' counters and a heartbeat from this process (host, pid), so that
        the round reads as one machine's would. False when `owner` holds it no more."""

    def set_unit_round(self, unit_id: int, owner: str, job_id: int, round_id: int) -> bool:
        """A job unit found its job and opened its round. False when `owner` holds it no more."""

    def end_unit(
        self,
        unit_id: int,
        owner: str,
        status: UnitStatus,
        message: str | None = None,
        **counters: int,
    ) -> bool:
        """The owner finished the unit: `done` or `failed` (another status raises ValueError),
        with its last counters. False (and nothing changed) when `owner` holds it no more."""

    def release_unit(
        self,
        unit_id: int,
        owner: str,
        *,
        delay: float = 0.0,
        message: str | None = None,
        **counters: int,
    ) -> bool:
        """The owner hands the unit back, unfinished (it stops, or the tenant throttles): queued
        again, due in `delay` seconds, to be handed to the broker anew. False when `owner`
        holds it no more."""

    def due_units(
        self, queues: Sequence[str], *, republish_after: float, waiting: bool
    ) -> list[UnitRecord]:
        """Units of these queues that the broker must be given (again), each marked handed
        over now, so that of several workers asking at once one gets each: units never handed
        over (or handed back) and due; running units whose lease lapsed, once every
        `republish_after` seconds; with `waiting` (the caller has been idle, so the broker holds
        nothing for it), queued units handed over more than `republish_after` seconds ago."""

    def mark_published(self, unit_ids: Iterable[int]) -> None:
        """These units were just handed to the broker."""

    def beat_worker(
        self,
        name: str,
        *,
        host: str,
        pid: int,
        queues: Sequence[str],
        status: str,
        unit_id: int | None,
        throttled_until: float = 0.0,
        lease_ttl: float = 60.0,
    ) -> None:
        """A worker's heartbeat: it is alive, `idle`, `busy` (on `unit_id`) or `stopped`;
        `throttled_until` (store's clock) is the end of a throttle window it met; `lease_ttl`
        the length of its leases (silent for longer, it is lost)."""

    def workers(self) -> list[WorkerRecord]:
        """Every worker that ever beat, by name; `seen_at` tells how long ago."""


class PackageStore(Protocol):
    """Migration API packages, their files and the service's events (part of `StateStore`)."""

    # --- Migration API packages ----------------------------------------------------------------

    def create_migration_package(
        self,
        job_id: int,
        round_id: int,
        package_id: str,
        *,
        data_uri: str,
        manifest_uri: str,
        queue_uri: str | None,
        key_file: str,
        own_containers: bool,
        files: Iterable[PackageFileRecord],
        unit_id: int | None = None,
        key: bytes | None = None,
    ) -> int:
        """Record a package the moment its containers exist, with its files (their
        `package_row` is ignored), `packing`; returns its row. Committed before returning.
        `unit_id`: the cluster's unit that made it (None on one machine); `key`: its AES key,
        kept in the store (on a cluster, `key_file` "") until its job ends
        (`set_package_status`); never part of a record, read only by `package_key`."""

    def package_file_stored(
        self, package_row: int, item_row: int, *, quick_xor: str, md5: str
    ) -> None:
        """The file's blob and its snapshot are stored: the hash of the bytes read and the MD5
        of what was stored."""

    def drop_package_files(self, package_row: int, item_rows: Iterable[int]) -> None:
        """Take these files out of a package not yet submitted (their source changed, or no
        run plans them any more). Committed before returning."""

    def set_package_status(
        self,
        package_row: int,
        status: PackageStatus,
        *,
        migration_job_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Move a package on; `migration_job_id` and `message` are kept once given. Committed
        before returning: the job id is saved before anything else happens to the package.
        Once the package's job has ended (`ended`, `closed`, `failed`) the key the store kept
        for it is erased, in the same commit."""

    def package_key(self, package_row: int) -> bytes | None:
        """The AES key kept for the package (`create_migration_package`), or None: kept in a
        file, erased since its job ended, or no such package. A secret: never shown."""

    def package_progress(
        self,
        package_row: int,
        next_token: str,
        *,
        errors: int,
        warnings: int,
        job: ServiceJob | None = None,
        events: Iterable[PackageEventRecord] = (),
    ) -> None:
        """Where reading the job's events stands, and what they counted; `job`: where the
        service's job stands after them; `events`: the errors and warnings among them, of
        which the store keeps the first hundred of each kind per package. Committed, all
        together."""

    def migration_packages(
        self, job_id: int, *, open_only: bool = False, last: int | None = None
    ) -> list[MigrationPackageRecord]:
        """The job's packages, oldest first (`open_only`: those not closed or failed; `last`:
        only the last this many made)."""

    def package_counts(self) -> list[PackageCount]:
        """The packages of every job's last round and those still open, counted by job,
        status and service job state: one query through indexes, whatever the number of
        packages (a dashboard asks every few seconds)."""

    def package_events(self, job_id: int) -> Iterator[PackageEventRecord]:
        """The errors and warnings the store kept for the job's packages, in the order they
        were read, streamed."""

    def migration_package(self, package_row: int) -> MigrationPackageRecord | None: ...

    def package_files(self, package_row: int) -> list[PackageFileRecord]:
        """A package's files (at most a few hundred), by item row."""


class StateStore(RunStore, ItemStore, UnitStore, PackageStore, Protocol):
    """A sharelift state store: jobs, their rounds, their items and open upload sessions, units
    of work and workers, Migration API packages; the contract in the module docstring, each
    part's methods in its own protocol.

    Use it as a context manager (`with open_state(path) as store:`), or call `close()`.
    """
