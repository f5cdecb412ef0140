"""What the state store holds, as values: statuses, and one record type per kind of row.

Every backend returns these types, so nothing outside `sharelift.state` knows how they are
stored. Paths are `bytes` (`os.fsencode` of the path relative to the job's source, `/`-separated)
so that names which are not valid UTF-8 survive the round trip exactly. Times are ISO-8601 UTC
text (`utcnow()`).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple


class ItemStatus(enum.StrEnum):
    """Where one item of a job stands. The values are what the store keeps."""

    PENDING = "pending"
    """Seen by a walk, not settled yet (or in flight when a run stopped)."""
    DONE = "done"
    """At the target and verified (DESIGN.md invariant 2)."""
    FAILED = "failed"
    SKIPPED = "skipped"
    """Left out: by a filter, by policy (the target is newer), or its folder is not migrated."""
    BLOCKED = "blocked"
    """Refused by a naming or size rule that no policy fixes."""
    DELETED = "deleted"
    """Gone from the source and removed from the target (--mirror)."""


OUTCOME_STATUSES = frozenset(
    {ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.BLOCKED, ItemStatus.DELETED}
)
"""The statuses `StateStore.record_outcome` writes (`done` has `record_done`)."""


class VerifiedBy(enum.StrEnum):
    """Which check proved that a `done` file at the target holds the source's content."""

    HASH = "hash"
    """The target's quickXorHash equals the hash of the bytes read."""
    PARTS = "parts"
    """SharePoint rewrote the Office file as it stored it; every part of its package but the
    metadata SharePoint writes was proved identical to the source's (`sharelift.office`)."""
    SIZE = "size"
    """SharePoint rewrote the file as it stored it; only that the upload took every byte is
    known, the stored content was not compared (the proof is off, or none applies)."""


class RoundStatus(enum.StrEnum):
    """Where one round (one run of a job) stands. The values are what the store keeps."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


def utcnow() -> str:
    """Now, as the ISO-8601 UTC text the store keeps (`2026-11-23T13:05:01.123456Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parent_of(path: bytes) -> bytes:
    """The relative folder of a relative path (`b"a/b/c"` -> `b"a/b"`, `b"c"` -> `b""`)."""
    cut = path.rfind(b"/")
    return b"" if cut < 0 else path[:cut]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job: a source folder and a target folder, identified by `key`."""

    id: int
    key: str
    source: str
    target: str
    drive_id: str | None
    folder_id: str | None
    folder_path: str | None
    created_at: str
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """One round of a job, with the progress counters it last saved."""

    id: int
    job_id: int
    number: int
    status: RoundStatus
    started_at: str
    ended_at: str | None
    heartbeat_at: str
    pid: int | None
    host: str | None
    files_total: int
    bytes_total: int
    files_done: int
    bytes_done: int
    files_skipped: int
    files_failed: int
    throttled: int
    log_path: str = ""
    """The log file the round wrote (`--log-file`), absolute; "" for none."""
    throttle_wait: float = 0.0
    """Seconds the tenant's throttle windows (Retry-After) held every request, so far."""
    report_dir: str = ""
    """The folder the round's reports were written to (`set_round_reports`); "" for none."""


@dataclass(frozen=True, slots=True)
class RoundSample:
    """A running round's counters at one instant (`StateStore.add_round_sample`): what the
    throughput chart of a report, and a dashboard, draw. Counters are the round's totals so
    far, not deltas, so a sample written twice is the same sample; `bytes_done` may be lower
    than in the sample before when a failed attempt's bytes are sent again."""

    at: str
    """ISO-8601 UTC (`utcnow()`)."""
    files_done: int
    bytes_done: int
    files_skipped: int
    files_failed: int
    throttled: int
    """Throttling signals received so far (429/503 with or without Retry-After)."""
    throttle_wait: float = 0.0
    """Seconds the tenant's throttle windows (Retry-After) held every request, so far."""


class ItemRecord(NamedTuple):
    """One item of a job, whole. A named tuple: a report reads one per item, and it is cheap."""

    id: int
    job_id: int
    path: bytes
    parent: bytes
    kind: str
    """`file` or `folder`."""
    target_path: str | None
    """Path below the job's target folder, after renames."""
    size: int | None
    mtime_ns: int | None
    quick_xor: str | None
    """Base64 quickXorHash of the bytes that were uploaded (files that are done)."""
    item_id: str | None
    """The driveItem id at the target."""
    etag: str | None
    status: ItemStatus
    error_code: str | None
    error_message: str | None
    attempts: int
    round_id: int | None
    """The last round that changed the item."""
    seen_round: int | None
    """The last round whose walk saw it (a folder seen whole is marked once, for all of it)."""
    started_at: str | None
    ended_at: str | None
    stored_size: int | None = None
    """Size of the version the target stores (differs from `size` when SharePoint rewrote it)."""
    stored_hash: str | None = None
    """quickXorHash of the version the target stores."""
    verified_by: str | None = None
    """A `VerifiedBy` value for a done file; None for folders and older rows."""

    @property
    def display_path(self) -> str:
        """The source path as text (undecodable bytes shown as escapes)."""
        return os.fsdecode(self.path).encode("utf-8", "backslashreplace").decode("utf-8")


class KnownItem(NamedTuple):
    """What planning needs of an item the store knows (`StateStore.children`): a re-run
    reads one per file, so it carries only these columns."""

    id: int
    path: bytes
    status: ItemStatus
    item_id: str | None
    target_path: str | None
    size: int | None
    mtime_ns: int | None


class TargetKnown(NamedTuple):
    """What reconciling with the target needs of an item that is done
    (`StateStore.done_at_target`, `StateStore.done_not_at_target`)."""

    id: int
    item_id: str
    kind: str
    quick_xor: str | None
    """The quickXorHash the target should report: the stored version's."""


@dataclass(frozen=True, slots=True)
class RoundCount:
    """How many items of one kind and status a round changed or saw (`StateStore.round_counts`)."""

    kind: str
    status: ItemStatus
    changed: bool
    """True: the round changed these items; False: it only saw them, unchanged."""
    noted: bool
    """True: the items carry an error code (for a `done` item: a note, such as a rename)."""
    items: int
    size: int
    """Sum of their sizes in bytes (folders count 0)."""
    started: bool = False
    """True: an attempt at the target began in the item's last round (`mark_started`); a
    `pending` item that was not started is one a stopped round never reached."""


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """How many of a job's items stand with one kind, status and code now
    (`StateStore.outcome_counts`): what is at the target, and what is not and why."""

    kind: str
    status: ItemStatus
    code: str
    """The error code ("" for none; for a `done` item, its note, such as a rename rule)."""
    items: int
    size: int
    """Sum of their sizes in bytes (folders count 0)."""
    example_path: bytes
    """One of them (the first in path order)."""
    example_message: str
    """That item's message."""
    last_round: int | None
    """The highest round number that changed one of them."""


@dataclass(frozen=True, slots=True)
class UploadSessionRecord:
    """An upload session a round opened, saved the moment it existed (invariant 4)."""

    item_row: int
    upload_url: str
    expires_at: str | None
    size: int
    mtime_ns: int
    created_at: str

    def __repr__(self) -> str:  # the URL is a bearer credential for the session
        return f"UploadSessionRecord(item_row={self.item_row}, size={self.size}, url=<hidden>)"


# --- a cluster: units of work and workers --------------------------------------------------


class UnitStatus(enum.StrEnum):
    """Where one unit of work stands. The values are what the store keeps."""

    QUEUED = "queued"
    """Waiting for a worker (or handed back by one)."""
    RUNNING = "running"
    """Leased by a worker; its lease may have lapsed (the worker died), then another takes it."""
    DONE = "done"
    FAILED = "failed"
    """Given up: it kept failing, or it met a defect. Its items stay as they are."""


UNIT_COUNTERS = frozenset(
    {"files_total", "bytes_total", "files_done", "bytes_done", "files_skipped", "files_failed"}
)
"""The progress counters a unit keeps (`StateStore.renew_lease`, `end_unit`, `release_unit`)."""


@dataclass(frozen=True, slots=True)
class NewUnit:
    """A unit of work to record (`StateStore.add_unit`)."""

    key: str
    """Its identity: adding a unit whose key exists adds nothing."""
    run: str
    kind: str
    queue: str
    spec: dict[str, Any]
    """What the unit needs, as JSON-ready data; never a secret (every worker reads it)."""
    path: bytes = b""
    job_id: int | None = None
    round_id: int | None = None
    parent: int | None = None


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """One unit of work: a job to start, a sub-tree of a round, or a round to finish.

    `lease_until`, `not_before` and `published_at` are on the store's clock
    (`StateStore.store_time`)."""

    id: int
    key: str
    run: str
    kind: str
    queue: str
    job_id: int | None
    round_id: int | None
    parent: int | None
    path: bytes
    spec: dict[str, Any]
    status: UnitStatus
    owner: str | None
    lease_until: float | None
    heartbeat_at: str | None
    attempts: int
    not_before: float
    published_at: float | None
    created_at: str
    started_at: str | None
    ended_at: str | None
    message: str | None
    files_total: int
    bytes_total: int
    files_done: int
    bytes_done: int
    files_skipped: int
    files_failed: int

    @property
    def finished(self) -> bool:
        return self.status in (UnitStatus.DONE, UnitStatus.FAILED)

    @property
    def display_path(self) -> str:
        """The sub-tree as text (undecodable bytes shown as escapes); "." for the whole job."""
        if not self.path:
            return "."
        return os.fsdecode(self.path).encode("utf-8", "backslashreplace").decode("utf-8")


class UnitCount(NamedTuple):
    """How many units of one round are in one status (`StateStore.unit_counts`)."""

    round_id: int | None
    """None for units no round holds yet (a job unit before it opened its round)."""
    status: UnitStatus
    units: int


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One worker process, as its last heartbeat told (`seen_at` on the store's clock)."""

    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    status: str
    """idle, busy or stopped."""
    unit_id: int | None
    started_at: str
    heartbeat_at: str
    seen_at: float
    throttled_until: float
    """Until when (store's clock) the tenant throttled this worker: a window for them all."""
    lease_ttl: float = 60.0
    """How long its leases outlive a heartbeat: a worker silent for longer is lost (its unit
    may be taken over)."""


class MovedAside(NamedTuple):
    """A file at the target renamed aside while another replaces it
    (`StateStore.save_moved_aside`)."""

    item_row: int
    item_id: str
    """The old file; renaming keeps its id."""
    parent_id: str
    name: str
    """Its own name, to put it back."""
    aside_name: str


class PackageStatus(enum.StrEnum):
    """Where one Migration API package stands (`StateStore.migration_packages`). The values are
    what the store keeps; the order below is the order a package goes through."""

    PACKING = "packing"
    """Its files are chosen and its containers exist; its blobs are being uploaded."""
    SUBMITTING = "submitting"
    """Every blob is stored; the import job is being created (the service may hold it already:
    a crash here is resolved by trying once more, which provided containers refuse)."""
    SUBMITTED = "submitted"
    """The service accepted the job (`migration_job_id`); it is followed to its end."""
    ENDED = "ended"
    """The job ended; its files are being verified through Graph."""
    CLOSED = "closed"
    """Every file it carried is settled; its key is deleted."""
    FAILED = "failed"
    """It could not be submitted or imported at all (`message` says why); its files were
    failed or left pending for the next run; its key is deleted."""


OPEN_PACKAGE_STATUSES = frozenset(
    {PackageStatus.PACKING, PackageStatus.SUBMITTING, PackageStatus.SUBMITTED, PackageStatus.ENDED}
)


class ServiceJobState(enum.StrEnum):
    """Where the service's import job of a package stands, as its last event says
    (`ServiceJob`); a job accepted and not heard from yet is `queued`."""

    QUEUED = "queued"
    """JobQueued, or no event yet."""
    PROCESSING = "processing"
    """JobStart, JobProgress, and the errors and warnings reported while it imports."""
    POSTPONED = "postponed"
    """JobPostponed: the service picks the job up again later."""
    DONE = "done"
    """JobEnd without a JobFatalError."""
    FAILED = "failed"
    """JobFatalError (even when JobEnd follows), JobCancelled, JobDeleted, or a job the
    service no longer knows."""


@dataclass(frozen=True, slots=True)
class ServiceJob:
    """What a package's import job reported so far (`StateStore.package_progress`)."""

    state: ServiceJobState
    last_event: str
    """The name of the last event read (`JobProgress`)."""
    last_event_at: str
    """When the service says it happened (ISO UTC)."""
    files_imported: int
    bytes_imported: int
    """The job's own counters (`FilesCreated`, `BytesProcessed` of its last JobProgress or
    JobEnd)."""


@dataclass(frozen=True, slots=True)
class PackageEventRecord:
    """An error or a warning the service reported about a package's import job (the store
    keeps a bounded number per package; `MigrationPackageRecord.errors` and `warnings` count
    them all)."""

    package_row: int
    event: str
    """JobError, JobWarning or JobFatalError."""
    at: str
    """When the service says it happened (ISO UTC)."""
    code: str
    """The service's ErrorCode (an HRESULT; "" or "0" for none)."""
    url: str
    """The object it concerns ("" for the whole package)."""
    message: str


@dataclass(frozen=True, slots=True)
class PackageCount:
    """Packages of one job in one status whose service job is in one state, counted
    (`StateStore.package_counts`)."""

    job_id: int
    status: PackageStatus
    job_state: ServiceJobState | None
    """None for packages the service holds no job for (not submitted yet, or failed first)."""
    packages: int
    files: int
    bytes: int
    """Bytes of the files packaged."""
    bytes_uploaded: int
    """Of those, the bytes whose blobs are stored."""
    files_imported: int
    bytes_imported: int
    errors: int
    warnings: int
    last_event_at: str
    """The latest event read of these packages ("" for none)."""


@dataclass(frozen=True, slots=True)
class MigrationPackageRecord:
    """A Migration API package: its containers, key file and import job (issue 14). Recorded
    the moment its containers exist (invariant 4); the SAS URIs are bearer credentials."""

    id: int
    job_id: int
    round_id: int
    package_id: str
    """The package's own id (a uuid), in its blob names and reports."""
    status: PackageStatus
    data_uri: str
    """The content container's URI with its SAS (a credential: never shown)."""
    manifest_uri: str
    """The manifest container's URI with its SAS (a credential: never shown)."""
    queue_uri: str | None
    """The Azure queue the job reports to, with its SAS, or None."""
    key_file: str
    """Where the AES-256 key is kept (0600) until the job ends; "" when the state store keeps
    it (on a cluster: `StateStore.package_key`)."""
    own_containers: bool
    migration_job_id: str | None
    """The service's job id, once it accepted the job."""
    next_token: str
    """Where reading the job's progress stands (`GetMigrationJobProgress`)."""
    files: int
    bytes: int
    errors: int
    warnings: int
    message: str | None
    created_at: str
    submitted_at: str | None
    ended_at: str | None
    job_state: ServiceJobState | None = None
    """Where the service's job stands (`ServiceJob`); None without a job."""
    last_event: str = ""
    last_event_at: str = ""
    files_imported: int = 0
    bytes_imported: int = 0
    unit_id: int | None = None
    """The cluster's unit that made it and follows it (None: made on one machine)."""

    def __repr__(self) -> str:  # the container and queue URIs carry SAS signatures
        return (
            f"MigrationPackageRecord(id={self.id}, package_id={self.package_id}, "
            f"status={self.status}, job={self.migration_job_id}, uris=<hidden>)"
        )


class PackageFileRecord(NamedTuple):
    """One file of a package: which item, under which id and blob, and what was stored."""

    package_row: int
    item_row: int
    file_id: str
    """The file's id in the manifest (uuid5 of its target: a resubmission replaces it)."""
    blob: str
    """Its blob's name in the content container."""
    size: int
    mtime_ns: int
    """The source file's size and modification time when it was packaged."""
    quick_xor: str | None
    """The quickXorHash of the bytes packaged, once its blob is stored."""
    md5: str | None
    """Base64 MD5 of the blob as stored (encrypted), once stored."""
    stored: bool
    """Its blob and the blob's snapshot exist."""
