"""The Migration API packages of a state store (`migration_packages`,
`migration_package_files`, `migration_package_events`), for both backends (the SQL is written
once: `portable.py`); the methods keep the contract of `sharelift.state.StateStore`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sharelift.state.portable import PortableSql
from sharelift.state.records import (
    OPEN_PACKAGE_STATUSES,
    MigrationPackageRecord,
    PackageCount,
    PackageEventRecord,
    PackageFileRecord,
    PackageStatus,
    ServiceJob,
    ServiceJobState,
    utcnow,
)

_PACKAGE_COLUMNS = (
    "id, job_id, round_id, package_id, status, data_uri, manifest_uri, queue_uri, key_file, "
    "own_containers, migration_job_id, next_token, files, bytes, errors, warnings, message, "
    "created_at, submitted_at, ended_at, "
    # A job the service accepted and has not been heard from yet is queued.
    "CASE WHEN migration_job_id IS NULL THEN NULL ELSE coalesce(job_state, 'queued') END, "
    "last_event, last_event_at, files_imported, bytes_imported, unit_id"
)
"""A package's record; never its key (`aes_key`), which only `package_key` reads."""
_FILE_COLUMNS = "package_row, item_row, file_id, blob, size, mtime_ns, quick_xor, md5, stored"
_STATUSES = {s.value: s for s in PackageStatus}
_JOB_STATES = {s.value: s for s in ServiceJobState}
EVENTS_KEPT = 100
"""Errors (and as many warnings) the store keeps with their messages per package."""
_OPEN = ", ".join(f"'{s.value}'" for s in sorted(OPEN_PACKAGE_STATUSES))
_COUNTS = f"""
    SELECT p.job_id, p.status,
        CASE WHEN p.migration_job_id IS NULL THEN NULL ELSE coalesce(p.job_state, 'queued') END,
        count(*), sum(p.files), sum(p.bytes),
        sum(CASE WHEN p.status IN ('packing', 'failed') THEN (
            SELECT coalesce(sum(f.size), 0) FROM migration_package_files f
            WHERE f.package_row = p.id AND f.stored != 0) ELSE p.bytes END),
        sum(p.files_imported), sum(p.bytes_imported), sum(p.errors), sum(p.warnings),
        max(p.last_event_at)
    FROM migration_packages p
    WHERE p.round_id IN (SELECT max(id) FROM rounds GROUP BY job_id) OR p.status IN ({_OPEN})
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""  # noqa: S608 - no value of the caller's in it
"""Packages counted (see `package_counts`): a package being packed or that failed counts
the bytes of its stored blobs; any other had them all stored."""


def _package(row: tuple[Any, ...]) -> MigrationPackageRecord:
    values = list(row)
    values[4] = _STATUSES[values[4]]
    values[9] = bool(values[9])
    values[20] = _JOB_STATES[values[20]] if values[20] else None
    return MigrationPackageRecord(*values)


def _file(row: tuple[Any, ...]) -> PackageFileRecord:
    return PackageFileRecord._make((*row[:8], bool(row[8])))


class PackageRows(PortableSql):
    """The Migration API packages of a state store (see the module docstring)."""

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
        ((row,),) = self._write(
            "INSERT INTO migration_packages (job_id, round_id, package_id, status, data_uri, "
            "manifest_uri, queue_uri, key_file, own_containers, created_at, unit_id, aes_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                job_id,
                round_id,
                package_id,
                PackageStatus.PACKING.value,
                data_uri,
                manifest_uri,
                queue_uri,
                key_file,
                int(own_containers),
                utcnow(),
                unit_id,
                key,
            ),
        )
        self._write_many(
            f"INSERT INTO migration_package_files ({_FILE_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(row, *f[1:8], int(f.stored)) for f in files],
        )
        self._count_files(int(row))
        self.flush()
        return int(row)

    def _count_files(self, package_row: int) -> None:
        self._write(
            "UPDATE migration_packages SET files = (SELECT count(*) FROM migration_package_files "
            "WHERE package_row = ?), bytes = (SELECT coalesce(sum(size), 0) FROM "
            "migration_package_files WHERE package_row = ?) WHERE id = ?",
            (package_row, package_row, package_row),
        )

    def package_file_stored(
        self, package_row: int, item_row: int, *, quick_xor: str, md5: str
    ) -> None:
        self._write(
            "UPDATE migration_package_files SET quick_xor = ?, md5 = ?, stored = 1 "
            "WHERE package_row = ? AND item_row = ?",
            (quick_xor, md5, package_row, item_row),
        )

    def drop_package_files(self, package_row: int, item_rows: Iterable[int]) -> None:
        self._write_many(
            "DELETE FROM migration_package_files WHERE package_row = ? AND item_row = ?",
            [(package_row, r) for r in item_rows],
        )
        self._count_files(package_row)
        self.flush()

    def set_package_status(
        self,
        package_row: int,
        status: PackageStatus,
        *,
        migration_job_id: str | None = None,
        message: str | None = None,
    ) -> None:
        now = utcnow()
        self._write(
            "UPDATE migration_packages SET status = ?, "
            "migration_job_id = coalesce(?, migration_job_id), message = coalesce(?, message), "
            "submitted_at = CASE WHEN ? = 'submitted' THEN ? ELSE submitted_at END, "
            "ended_at = CASE WHEN ? IN ('ended', 'failed') AND ended_at IS NULL THEN ? "
            "ELSE ended_at END, "
            "aes_key = CASE WHEN ? IN ('ended', 'closed', 'failed') THEN NULL ELSE aes_key END "
            "WHERE id = ?",
            (status.value, migration_job_id, message, status.value, now, status.value, now,
             status.value, package_row),
        )  # fmt: skip
        self.flush()

    def package_key(self, package_row: int) -> bytes | None:
        rows = self._read("SELECT aes_key FROM migration_packages WHERE id = ?", (package_row,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

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
        self._write(
            "UPDATE migration_packages SET next_token = ?, errors = ?, warnings = ? WHERE id = ?",
            (next_token, errors, warnings, package_row),
        )
        if job is not None:
            self._write(
                "UPDATE migration_packages SET job_state = ?, last_event = ?, last_event_at = ?, "
                "files_imported = ?, bytes_imported = ? WHERE id = ?",
                (job.state.value, job.last_event, job.last_event_at, job.files_imported,
                 job.bytes_imported, package_row),
            )  # fmt: skip
        self._write_many(
            "INSERT INTO migration_package_events (package_row, event, at, code, url, message) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE (SELECT count(*) FROM migration_package_events "
            "WHERE package_row = ? AND event = ?) < ?",
            [
                (package_row, e.event, e.at, e.code, e.url, e.message, package_row, e.event,
                 EVENTS_KEPT)
                for e in events
            ],
        )  # fmt: skip
        self.flush()

    def migration_packages(
        self, job_id: int, *, open_only: bool = False, last: int | None = None
    ) -> list[MigrationPackageRecord]:
        limit, params = ("", [job_id]) if last is None else (" LIMIT ?", [job_id, last])
        rows = self._read(
            f"SELECT * FROM (SELECT {_PACKAGE_COLUMNS} FROM migration_packages "  # noqa: S608
            f"WHERE job_id = ? ORDER BY id DESC{limit}) AS p ORDER BY id",
            params,
        )
        found = [_package(r) for r in rows]
        return [p for p in found if p.status in OPEN_PACKAGE_STATUSES] if open_only else found

    def package_counts(self) -> list[PackageCount]:
        # PostgreSQL's sum of integers is a numeric: made an int again.
        return [
            PackageCount(
                job_id=r[0],
                status=_STATUSES[r[1]],
                job_state=_JOB_STATES[r[2]] if r[2] else None,
                packages=int(r[3]),
                files=int(r[4]),
                bytes=int(r[5]),
                bytes_uploaded=int(r[6]),
                files_imported=int(r[7]),
                bytes_imported=int(r[8]),
                errors=int(r[9]),
                warnings=int(r[10]),
                last_event_at=r[11] or "",
            )
            for r in self._read(_COUNTS)
        ]

    def package_events(self, job_id: int) -> Iterator[PackageEventRecord]:
        # At most EVENTS_KEPT of each kind per package: read at once.
        rows = self._read(
            "SELECT e.package_row, e.event, e.at, e.code, e.url, e.message "
            "FROM migration_packages p JOIN migration_package_events e ON e.package_row = p.id "
            "WHERE p.job_id = ? ORDER BY e.id",
            (job_id,),
        )
        return (PackageEventRecord(*row) for row in rows)

    def migration_package(self, package_row: int) -> MigrationPackageRecord | None:
        rows = self._read(
            f"SELECT {_PACKAGE_COLUMNS} FROM migration_packages WHERE id = ?",  # noqa: S608
            (package_row,),
        )
        return _package(rows[0]) if rows else None

    def package_files(self, package_row: int) -> list[PackageFileRecord]:
        rows = self._read(
            f"SELECT {_FILE_COLUMNS} FROM migration_package_files "  # noqa: S608
            "WHERE package_row = ? ORDER BY item_row",
            (package_row,),
        )
        return [_file(r) for r in rows]
