"""Jobs, rounds and upload sessions, written once for both backends (`portable.py`).

`JobRows` is the part of a state store that keeps the `jobs`, `rounds`, `round_samples` and
`upload_sessions` tables, and its integrity check; its methods keep the contract of
`sharelift.state.StateStore`. None of them runs once per item of a migration. Each backend
keeps what differs: opening and closing, the last round of each job (`latest_rounds`), and how
samples are streamed (`round_samples`, `samples_since`); SQLite adds its integrity pragma to
`check`.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Self

from sharelift.state.portable import PortableSql
from sharelift.state.records import (
    JobRecord,
    RoundRecord,
    RoundSample,
    RoundStatus,
    UploadSessionRecord,
    utcnow,
)

_JOB_COLUMNS = "id, key, source, target, drive_id, folder_id, folder_path, created_at, options"
ROUND_COLUMNS = (
    "id, job_id, number, status, started_at, ended_at, heartbeat_at, pid, host, "
    "files_total, bytes_total, files_done, bytes_done, files_skipped, files_failed, throttled, "
    "log_path, throttle_wait, report_dir"
)
"""A round's columns in `RoundRecord`'s order (its status as text: `round_record`)."""
SAMPLE_COLUMNS = "at, files_done, bytes_done, files_skipped, files_failed, throttled, throttle_wait"
"""A sample's columns in `RoundSample`'s order."""
_SESSION_COLUMNS = "item_row, upload_url, expires_at, size, mtime_ns, created_at"
_ROUND_STATUS = {s.value: s for s in RoundStatus}
_FINAL_ROUND_STATUSES = frozenset(RoundStatus) - {RoundStatus.RUNNING}
_PROGRESS_FIELDS = frozenset(
    {
        "files_total",
        "bytes_total",
        "files_done",
        "bytes_done",
        "files_skipped",
        "files_failed",
        "throttled",
        "throttle_wait",
    }
)


def _job(row: Any) -> JobRecord:
    values = list(row)
    values[8] = json.loads(values[8])
    return JobRecord(*values)


def round_record(row: Any) -> RoundRecord:
    """A round read with `ROUND_COLUMNS`, its status as a `RoundStatus`."""
    values = list(row)
    values[3] = _ROUND_STATUS[values[3]]
    return RoundRecord(*values)


class JobRows(PortableSql):
    """Jobs, rounds and upload sessions (see the module docstring)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def keep_round_counts(self, job_id: int, round_id: int) -> None:
        raise NotImplementedError

    # --- jobs ----------------------------------------------------------------------------------

    def ensure_job(
        self, key: str, source: str, target: str, options: dict[str, Any] | None = None
    ) -> JobRecord:
        opts = json.dumps(options or {}, sort_keys=True)
        self._write(
            "INSERT INTO jobs (key, source, target, created_at, options) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET source = excluded.source, target = excluded.target, "
            "options = excluded.options",
            (key, source, target, utcnow(), opts),
        )
        self.flush()
        job = self.job_by_key(key)
        assert job is not None
        return job

    def set_job_target(
        self, job_id: int, drive_id: str, folder_id: str | None, folder_path: str
    ) -> None:
        self._write(
            "UPDATE jobs SET drive_id = ?, folder_id = ?, folder_path = ? WHERE id = ?",
            (drive_id, folder_id, folder_path, job_id),
        )
        self.flush()

    def job_by_key(self, key: str) -> JobRecord | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ?", (key,))  # noqa: S608
        return _job(rows[0]) if rows else None

    def job(self, job_id: int) -> JobRecord | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))  # noqa: S608
        return _job(rows[0]) if rows else None

    def jobs(self) -> list[JobRecord]:
        return [_job(r) for r in self._read(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id")]  # noqa: S608

    # --- rounds --------------------------------------------------------------------------------

    def start_round(self, job_id: int, *, log_path: str = "") -> RoundRecord:
        now = utcnow()
        for (stale,) in self._read(
            "SELECT id FROM rounds WHERE job_id = ? AND status = 'running'", (job_id,)
        ):
            self.keep_round_counts(job_id, stale)
        self._write(
            "UPDATE rounds SET status = 'interrupted', ended_at = heartbeat_at "
            "WHERE job_id = ? AND status = 'running'",
            (job_id,),
        )
        ((round_id,),) = self._write(
            "INSERT INTO rounds (job_id, number, status, started_at, heartbeat_at, pid, host, "
            "log_path) SELECT ?, coalesce(max(number), 0) + 1, 'running', ?, ?, ?, ?, ? "
            "FROM rounds WHERE job_id = ? RETURNING id",
            (job_id, now, now, os.getpid(), socket.gethostname(), log_path, job_id),
        )
        self.flush()
        rnd = self.round(int(round_id))
        assert rnd is not None
        return rnd

    def update_round(self, round_id: int, **counters: float) -> None:
        unknown = set(counters) - _PROGRESS_FIELDS
        if unknown:
            raise ValueError(f"unknown round counters: {sorted(unknown)}")
        sets = "".join(f", {name} = ?" for name in counters)
        self._write(
            f"UPDATE rounds SET heartbeat_at = ?{sets} WHERE id = ?",  # noqa: S608 (names checked)
            (utcnow(), *counters.values(), round_id),
        )

    def finish_round(self, round_id: int, status: RoundStatus) -> None:
        if status not in _FINAL_ROUND_STATUSES:
            raise ValueError(f"not a final round status: {status}")
        found = self._read("SELECT job_id, status FROM rounds WHERE id = ?", (round_id,))
        if found and found[0][1] == RoundStatus.RUNNING:
            self.keep_round_counts(found[0][0], round_id)
        now = utcnow()
        self._write(
            "UPDATE rounds SET status = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?",
            (status, now, now, round_id),
        )
        self.flush()

    def add_round_sample(self, round_id: int, sample: RoundSample) -> None:
        self._write(
            "INSERT INTO round_samples (round_id, at, files_done, bytes_done, files_skipped, "
            "files_failed, throttled, throttle_wait) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (round_id, at) DO UPDATE SET files_done = excluded.files_done, "
            "bytes_done = excluded.bytes_done, files_skipped = excluded.files_skipped, "
            "files_failed = excluded.files_failed, throttled = excluded.throttled, "
            "throttle_wait = excluded.throttle_wait",
            (
                round_id,
                sample.at,
                sample.files_done,
                sample.bytes_done,
                sample.files_skipped,
                sample.files_failed,
                sample.throttled,
                sample.throttle_wait,
            ),
        )

    def set_round_reports(self, round_id: int, folder: str) -> None:
        self._write("UPDATE rounds SET report_dir = ? WHERE id = ?", (folder, round_id))
        self.flush()

    def round(self, round_id: int) -> RoundRecord | None:
        rows = self._read(f"SELECT {ROUND_COLUMNS} FROM rounds WHERE id = ?", (round_id,))  # noqa: S608
        return round_record(rows[0]) if rows else None

    def rounds(self, job_id: int | None = None) -> list[RoundRecord]:
        if job_id is None:
            rows = self._read(f"SELECT {ROUND_COLUMNS} FROM rounds ORDER BY id")  # noqa: S608
        else:
            rows = self._read(
                f"SELECT {ROUND_COLUMNS} FROM rounds WHERE job_id = ? ORDER BY number",  # noqa: S608
                (job_id,),
            )
        return [round_record(r) for r in rows]

    # --- upload sessions -----------------------------------------------------------------------

    def save_upload_session(
        self, row: int, upload_url: str, expires_at: str | None, size: int, mtime_ns: int
    ) -> None:
        self._write(
            f"INSERT INTO upload_sessions ({_SESSION_COLUMNS}) "  # noqa: S608 (a constant)
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (item_row) DO UPDATE SET "
            "upload_url = excluded.upload_url, expires_at = excluded.expires_at, "
            "size = excluded.size, mtime_ns = excluded.mtime_ns, created_at = excluded.created_at",
            (row, upload_url, expires_at, size, mtime_ns, utcnow()),
        )
        self.flush()

    def upload_session(self, row: int) -> UploadSessionRecord | None:
        found = self._read(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE item_row = ?",  # noqa: S608
            (row,),
        )
        return UploadSessionRecord(*found[0]) if found else None

    def drop_upload_session(self, row: int) -> None:
        self._write("DELETE FROM upload_sessions WHERE item_row = ?", (row,))

    def upload_sessions(self, job_id: int) -> list[UploadSessionRecord]:
        rows = self._read(
            "SELECT s.item_row, s.upload_url, s.expires_at, s.size, s.mtime_ns, s.created_at "
            "FROM upload_sessions s JOIN items i ON i.id = s.item_row WHERE i.job_id = ?",
            (job_id,),
        )
        return [UploadSessionRecord(*r) for r in rows]

    # --- integrity -----------------------------------------------------------------------------

    def check(self) -> list[str]:
        problems: list[str] = []
        for (path,) in self._read(
            "SELECT path FROM items WHERE status = 'done' AND kind = 'file' "
            "AND (item_id IS NULL OR quick_xor IS NULL)"
        ):
            problems.append(f"{os.fsdecode(path)!r} is done without a target id and hash")
        for (path,) in self._read(
            "SELECT i.path FROM upload_sessions s JOIN items i ON i.id = s.item_row "
            "WHERE i.status = 'done'"
        ):
            problems.append(f"{os.fsdecode(path)!r} is done but still holds an upload session")
        return problems
