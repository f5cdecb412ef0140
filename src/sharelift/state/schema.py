"""The SQLite state store's schema, as an ordered list of named migrations.

A migration is applied once, inside a transaction, and recorded by name in `schema_migrations`.
Never edit a migration that has shipped: append a new one. Paths are stored as BLOBs
(`os.fsencode`) so that names which are not valid UTF-8 survive the round trip exactly.
Statements are separated by `;` (a trigger is one statement, its body included: `statements`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE jobs (
            id            INTEGER PRIMARY KEY,
            key           TEXT NOT NULL UNIQUE,   -- stable identity: source + target
            source        TEXT NOT NULL,          -- as the user gave it, for display
            target        TEXT NOT NULL,          -- as the user gave it, for display
            drive_id      TEXT,                   -- resolved target, once known
            folder_id     TEXT,
            folder_path   TEXT,
            created_at    TEXT NOT NULL,
            options       TEXT NOT NULL DEFAULT '{}'
        );

        CREATE TABLE rounds (
            id            INTEGER PRIMARY KEY,
            job_id        INTEGER NOT NULL REFERENCES jobs(id),
            number        INTEGER NOT NULL,       -- 1 for the first run of a job, then 2, 3…
            status        TEXT NOT NULL,          -- running, completed, failed, interrupted
            started_at    TEXT NOT NULL,
            ended_at      TEXT,
            heartbeat_at  TEXT NOT NULL,
            pid           INTEGER,
            host          TEXT,
            -- progress counters, refreshed while the round runs
            files_total   INTEGER NOT NULL DEFAULT 0,
            bytes_total   INTEGER NOT NULL DEFAULT 0,
            files_done    INTEGER NOT NULL DEFAULT 0,
            bytes_done    INTEGER NOT NULL DEFAULT 0,
            files_skipped INTEGER NOT NULL DEFAULT 0,
            files_failed  INTEGER NOT NULL DEFAULT 0,
            throttled     INTEGER NOT NULL DEFAULT 0,
            UNIQUE (job_id, number)
        );

        CREATE TABLE items (
            id            INTEGER PRIMARY KEY,
            job_id        INTEGER NOT NULL REFERENCES jobs(id),
            path          BLOB NOT NULL,          -- source path relative to the job's source
            parent        BLOB NOT NULL,          -- its folder's relative path (b'' = root)
            kind          TEXT NOT NULL,          -- file, folder
            target_path   TEXT,                   -- relative target path after renames
            size          INTEGER,
            mtime_ns      INTEGER,
            quick_xor     TEXT,                   -- base64, of the bytes that were uploaded
            item_id       TEXT,                   -- target driveItem id
            etag          TEXT,
            status        TEXT NOT NULL,          -- pending done failed skipped blocked deleted
            error_code    TEXT,
            error_message TEXT,
            attempts      INTEGER NOT NULL DEFAULT 0,
            round_id      INTEGER REFERENCES rounds(id),  -- last round that changed the row
            seen_round    INTEGER,                -- last round whose walk saw the source item
            started_at    TEXT,
            ended_at      TEXT,
            UNIQUE (job_id, path)
        );
        CREATE INDEX items_by_parent ON items (job_id, parent);
        CREATE INDEX items_by_status ON items (job_id, status);

        CREATE TABLE upload_sessions (
            item_row      INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
            upload_url    TEXT NOT NULL,          -- pre-authenticated: never logged or reported
            expires_at    TEXT,
            size          INTEGER NOT NULL,
            mtime_ns      INTEGER NOT NULL,
            created_at    TEXT NOT NULL
        );
        """,
    ),
    (
        "0002_folders_seen",
        """
        -- A folder whose known items a round's walk all saw, unchanged: one row per folder
        -- instead of a write to each of its items. An item counts as seen by round R when its
        -- seen_round is R or its folder's row here holds R.
        CREATE TABLE folders_seen (
            job_id        INTEGER NOT NULL REFERENCES jobs(id),
            parent        BLOB NOT NULL,          -- the folder's relative path (b'' = root)
            round_id      INTEGER NOT NULL,       -- the last round that saw all of it
            PRIMARY KEY (job_id, parent)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0003_verify_target",
        """
        -- --verify-target streams the target's delta and looks each entry up by its driveItem
        -- id (instead of holding every done item in memory), marking the items it finds. The
        -- done items left unmarked are missing at the target.
        ALTER TABLE items ADD COLUMN target_seen_round INTEGER;
        CREATE INDEX items_by_target_id ON items (job_id, item_id);
        """,
    ),
    (
        "0004_round_history",
        """
        -- A round's reports can be rebuilt exactly after later rounds changed its items:
        -- an item row holds only its last round's outcome, so when a later round changes
        -- an item, the outcome the earlier round left is kept here first (by the trigger:
        -- nothing to remember in the code that writes items). A round's item report reads
        -- the items whose round_id is its id, and its rows here.
        CREATE TABLE item_history (
            round_id      INTEGER NOT NULL,       -- the round whose outcome this was
            item_row      INTEGER NOT NULL REFERENCES items(id),
            kind          TEXT NOT NULL,
            target_path   TEXT,
            size          INTEGER,
            mtime_ns      INTEGER,
            quick_xor     TEXT,
            item_id       TEXT,
            etag          TEXT,
            status        TEXT NOT NULL,
            error_code    TEXT,
            error_message TEXT,
            attempts      INTEGER NOT NULL,
            started_at    TEXT,
            ended_at      TEXT,
            PRIMARY KEY (round_id, item_row)
        ) WITHOUT ROWID;
        CREATE TRIGGER items_keep_round_outcome BEFORE UPDATE OF round_id ON items
        WHEN OLD.round_id IS NOT NULL AND OLD.round_id IS NOT NEW.round_id
        BEGIN
            INSERT OR REPLACE INTO item_history (round_id, item_row, kind, target_path, size,
                mtime_ns, quick_xor, item_id, etag, status, error_code, error_message, attempts,
                started_at, ended_at)
            VALUES (OLD.round_id, OLD.id, OLD.kind, OLD.target_path, OLD.size, OLD.mtime_ns,
                OLD.quick_xor, OLD.item_id, OLD.etag, OLD.status, OLD.error_code,
                OLD.error_message, OLD.attempts, OLD.started_at, OLD.ended_at);
        END;

        -- What a round's walk met, counted when the round closed (the live count also covers
        -- items only seen, which later rounds mark as theirs).
        CREATE TABLE round_totals (
            round_id      INTEGER NOT NULL REFERENCES rounds(id),
            kind          TEXT NOT NULL,
            status        TEXT NOT NULL,
            changed       INTEGER NOT NULL,
            noted         INTEGER NOT NULL,
            started       INTEGER NOT NULL,
            items         INTEGER NOT NULL,
            size          INTEGER NOT NULL,
            PRIMARY KEY (round_id, kind, status, changed, noted, started)
        ) WITHOUT ROWID;
        ALTER TABLE rounds ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;  -- round_totals kept
        ALTER TABLE rounds ADD COLUMN log_path TEXT NOT NULL DEFAULT '';
        """,
    ),
    (
        "0005_round_samples",
        """
        -- A round's counters every few seconds while it runs: the throughput over the run
        -- (the HTML report's chart; a dashboard reads the same rows).
        CREATE TABLE round_samples (
            round_id      INTEGER NOT NULL REFERENCES rounds(id),
            at            TEXT NOT NULL,
            files_done    INTEGER NOT NULL,
            bytes_done    INTEGER NOT NULL,
            files_skipped INTEGER NOT NULL,
            files_failed  INTEGER NOT NULL,
            throttled     INTEGER NOT NULL,
            PRIMARY KEY (round_id, at)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0006_migration_packages",
        """
        -- The Migration API mover's packages (issue 14): recorded the moment their containers
        -- exist, with the service's job id saved before anything else once it is known, so
        -- that a killed run resumes them (uploads what is missing, follows the job) and never
        -- submits one twice. SAS URIs are bearer credentials: the file is 0600.
        CREATE TABLE migration_packages (
            id               INTEGER PRIMARY KEY,
            job_id           INTEGER NOT NULL REFERENCES jobs(id),
            round_id         INTEGER NOT NULL,
            package_id       TEXT NOT NULL UNIQUE,
            status           TEXT NOT NULL,  -- packing submitting submitted ended closed failed
            data_uri         TEXT NOT NULL,
            manifest_uri     TEXT NOT NULL,
            queue_uri        TEXT,
            key_file         TEXT NOT NULL,
            own_containers   INTEGER NOT NULL,
            migration_job_id TEXT,
            next_token       TEXT NOT NULL DEFAULT '0',
            files            INTEGER NOT NULL DEFAULT 0,
            bytes            INTEGER NOT NULL DEFAULT 0,
            errors           INTEGER NOT NULL DEFAULT 0,
            warnings         INTEGER NOT NULL DEFAULT 0,
            message          TEXT,
            created_at       TEXT NOT NULL,
            submitted_at     TEXT,
            ended_at         TEXT
        );
        CREATE INDEX migration_packages_by_job ON migration_packages (job_id, status);

        CREATE TABLE migration_package_files (
            package_row   INTEGER NOT NULL REFERENCES migration_packages(id) ON DELETE CASCADE,
            item_row      INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            file_id       TEXT NOT NULL,
            blob          TEXT NOT NULL,
            size          INTEGER NOT NULL,
            mtime_ns      INTEGER NOT NULL,
            quick_xor     TEXT,
            md5           TEXT,
            stored        INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (package_row, item_row)
        ) WITHOUT ROWID;
        CREATE INDEX migration_package_files_by_item ON migration_package_files (item_row);
        """,
    ),
    (
        "0007_dashboard",
        """
        -- Throttling as time: the seconds the tenant's throttle windows (Retry-After) held
        -- every request, beside the count of 429/503 answers already kept.
        ALTER TABLE rounds ADD COLUMN throttle_wait REAL NOT NULL DEFAULT 0;
        ALTER TABLE round_samples ADD COLUMN throttle_wait REAL NOT NULL DEFAULT 0;
        -- Where a round's reports were written (a dashboard links to them; "" for none yet).
        ALTER TABLE rounds ADD COLUMN report_dir TEXT NOT NULL DEFAULT '';
        -- A dashboard reads only the samples written since its last look, across rounds.
        CREATE INDEX round_samples_by_time ON round_samples (at);
        """,
    ),
    (
        "0008_stored_version",
        """
        -- What the target stores may differ from the bytes sent: a SharePoint library rewrites
        -- the metadata of the Office files committed to it. The stored version's size and
        -- quickXorHash are kept beside the source's (`size`, `quick_xor`), so that
        -- --verify-target compares with what the target holds, and `verified_by` says which
        -- check proved the item: hash, parts (the Office package proved part by part) or size
        -- (the upload took every byte, the content was not compared).
        -- The round history keeps them too, so that a round's reports rebuilt later say
        -- which check proved each file.
        ALTER TABLE items ADD COLUMN stored_size INTEGER;
        ALTER TABLE items ADD COLUMN stored_hash TEXT;
        ALTER TABLE items ADD COLUMN verified_by TEXT;
        ALTER TABLE item_history ADD COLUMN stored_size INTEGER;
        ALTER TABLE item_history ADD COLUMN stored_hash TEXT;
        ALTER TABLE item_history ADD COLUMN verified_by TEXT;
        DROP TRIGGER items_keep_round_outcome;
        CREATE TRIGGER items_keep_round_outcome BEFORE UPDATE OF round_id ON items
        WHEN OLD.round_id IS NOT NULL AND OLD.round_id IS NOT NEW.round_id
        BEGIN
            INSERT OR REPLACE INTO item_history (round_id, item_row, kind, target_path, size,
                mtime_ns, quick_xor, item_id, etag, status, error_code, error_message, attempts,
                started_at, ended_at, stored_size, stored_hash, verified_by)
            VALUES (OLD.round_id, OLD.id, OLD.kind, OLD.target_path, OLD.size, OLD.mtime_ns,
                OLD.quick_xor, OLD.item_id, OLD.etag, OLD.status, OLD.error_code,
                OLD.error_message, OLD.attempts, OLD.started_at, OLD.ended_at,
                OLD.stored_size, OLD.stored_hash, OLD.verified_by);
        END;
        """,
    ),
    (
        "0009_version_prunes",
        """
        -- Removing the versions older than the current one of a file (each counts against
        -- the site's quota). prune_versions marks a file replaced with the option to do so,
        -- before it is sent: cleared once its older versions are gone, so a run stopped in
        -- between leaves the work to the next. version_prunes holds, per target folder being
        -- pruned by `sharelift versions prune`, the files done, so a stopped run resumes.
        ALTER TABLE items ADD COLUMN prune_versions INTEGER;
        CREATE TABLE version_prunes (
            key           TEXT NOT NULL,          -- the drive and folder being pruned
            item_id       TEXT NOT NULL,          -- a file whose older versions are gone
            PRIMARY KEY (key, item_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0010_moved_aside",
        """
        -- SharePoint may refuse to replace or delete an Office or web file in a library (404
        -- itemNotFound although it is there): the file is renamed aside first (a rename is
        -- not refused), the new one sent, then the old one deleted. Recorded before the
        -- rename (the item keeps its id), so a run stopped at any point is repaired by the
        -- next: the old file put back under its name, or deleted once the new one is done.
        CREATE TABLE moved_aside (
            item_row      INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
            item_id       TEXT NOT NULL,          -- the old file (its id survives the rename)
            parent_id     TEXT NOT NULL,          -- its folder at the target
            name          TEXT NOT NULL,          -- its name, to put it back
            aside_name    TEXT NOT NULL,          -- the name it is moved aside to
            created_at    TEXT NOT NULL
        );
        """,
    ),
    (
        "0011_package_events",
        """
        -- What the service said about each package's import job (a dashboard shows it): the
        -- job's state after its last event, that event, and what the job counted imported.
        ALTER TABLE migration_packages ADD COLUMN job_state TEXT;  -- queued processing ...
        ALTER TABLE migration_packages ADD COLUMN last_event TEXT NOT NULL DEFAULT '';
        ALTER TABLE migration_packages ADD COLUMN last_event_at TEXT NOT NULL DEFAULT '';
        ALTER TABLE migration_packages ADD COLUMN files_imported INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE migration_packages ADD COLUMN bytes_imported INTEGER NOT NULL DEFAULT 0;
        -- A dashboard counts the packages of the jobs' last rounds and those still open,
        -- every few seconds, through these two indexes (not the whole table).
        CREATE INDEX migration_packages_by_round ON migration_packages (round_id);
        CREATE INDEX migration_packages_by_status ON migration_packages (status);
        -- The errors and warnings of each job, with their messages: a bounded number per
        -- package (the package's errors and warnings count them all).
        CREATE TABLE migration_package_events (
            id            INTEGER PRIMARY KEY,
            package_row   INTEGER NOT NULL REFERENCES migration_packages(id) ON DELETE CASCADE,
            event         TEXT NOT NULL,          -- JobError JobWarning JobFatalError
            at            TEXT NOT NULL,
            code          TEXT NOT NULL,
            url           TEXT NOT NULL,
            message       TEXT NOT NULL
        );
        CREATE INDEX migration_package_events_by_package
            ON migration_package_events (package_row, event);
        """,
    ),
]


def statements(sql: str) -> Iterator[str]:
    """The statements of a migration, one by one (`;` inside a trigger's body does not end
    the trigger)."""
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
