"""The Migration API packages of a state store (`migration_packages`,
`migration_package_files`), for both backends (the SQL is written once: `portable.py`); the
methods keep the contract of `sharelift.state.StateStore`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sharelift.state.portable import PortableSql
from sharelift.state.records import (
    OPEN_PACKAGE_STATUSES,
    MigrationPackageRecord,
    PackageFileRecord,
    PackageStatus,
    utcnow,
)

_PACKAGE_COLUMNS = (
    "id, job_id, round_id, package_id, status, data_uri, manifest_uri, queue_uri, key_file, "
    "own_containers, migration_job_id, next_token, files, bytes, errors, warnings, message, "
    "created_at, submitted_at, ended_at"
)
_FILE_COLUMNS = "package_row, item_row, file_id, blob, size, mtime_ns, quick_xor, md5, stored"
_STATUSES = {s.value: s for s in PackageStatus}


def _package(row: tuple[Any, ...]) -> MigrationPackageRecord:
    values = list(row)
    values[4] = _STATUSES[values[4]]
    values[9] = bool(values[9])
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
    ) -> int:
        ((row,),) = self._write(
            "INSERT INTO migration_packages (job_id, round_id, package_id, status, data_uri, "
            "manifest_uri, queue_uri, key_file, own_containers, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
            "ELSE ended_at END WHERE id = ?",
            (status.value, migration_job_id, message, status.value, now, status.value, now,
             package_row),
        )  # fmt: skip
        self.flush()

    def package_progress(
        self, package_row: int, next_token: str, *, errors: int, warnings: int
    ) -> None:
        self._write(
            "UPDATE migration_packages SET next_token = ?, errors = ?, warnings = ? WHERE id = ?",
            (next_token, errors, warnings, package_row),
        )
        self.flush()

    def migration_packages(
        self, job_id: int, *, open_only: bool = False
    ) -> list[MigrationPackageRecord]:
        rows = self._read(
            f"SELECT {_PACKAGE_COLUMNS} FROM migration_packages WHERE job_id = ? "  # noqa: S608
            "ORDER BY id",
            (job_id,),
        )
        found = [_package(r) for r in rows]
        return [p for p in found if p.status in OPEN_PACKAGE_STATUSES] if open_only else found

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
