"""The emulator database's schema, as named migrations applied once each, in order.

A data folder written by an older emulator is brought up to date when it is opened; a new table
or column is a new entry at the end of `MIGRATIONS`, never an edit of an applied one. Applied
names are recorded in `schema_migrations`.
"""

from __future__ import annotations

import sqlite3

_INITIAL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, upn TEXT NOT NULL, upn_lower TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL, licensed INTEGER NOT NULL, drive_id TEXT);
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY, hostname TEXT NOT NULL, path TEXT NOT NULL, path_lower TEXT NOT NULL,
    web_url TEXT NOT NULL, display_name TEXT NOT NULL, name TEXT NOT NULL, created REAL NOT NULL,
    UNIQUE (hostname, path_lower));
CREATE TABLE IF NOT EXISTS drives (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, name TEXT NOT NULL, drive_type TEXT NOT NULL,
    web_url TEXT NOT NULL, owner_upn TEXT, is_default INTEGER NOT NULL,
    quota_total INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0, root_id TEXT NOT NULL, created REAL NOT NULL,
    delta_epoch INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS drives_site ON drives (site_id);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, drive_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
    name_lower TEXT NOT NULL, is_folder INTEGER NOT NULL, size INTEGER NOT NULL, mime TEXT,
    qxh TEXT, content_key TEXT, guid TEXT NOT NULL, etag_n INTEGER NOT NULL,
    ctag_n INTEGER NOT NULL, version_n INTEGER NOT NULL, created REAL NOT NULL,
    modified REAL NOT NULL, fs_created REAL NOT NULL, fs_modified REAL NOT NULL,
    created_by TEXT NOT NULL, modified_by TEXT NOT NULL, child_count INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS items_by_name
    ON items (drive_id, parent_id, name_lower) WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS items_by_parent ON items (parent_id);
CREATE INDEX IF NOT EXISTS items_by_seq ON items (drive_id, seq);
CREATE TABLE IF NOT EXISTS versions (
    item_id TEXT NOT NULL, n INTEGER NOT NULL, size INTEGER NOT NULL, content_key TEXT NOT NULL,
    modified REAL NOT NULL, modified_by TEXT NOT NULL, PRIMARY KEY (item_id, n));
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, drive_id TEXT NOT NULL, parent_id TEXT NOT NULL, name TEXT NOT NULL,
    item_id TEXT, conflict TEXT NOT NULL, fs_created REAL, fs_modified REAL, file_size INTEGER,
    received INTEGER NOT NULL, expires REAL NOT NULL, defer_commit INTEGER NOT NULL,
    created_by TEXT NOT NULL);
"""

MIGRATIONS: tuple[tuple[str, str], ...] = (
    # IF NOT EXISTS throughout: data folders from before migrations were named already hold
    # these tables, and take this one as applied.
    ("0001-tenant-items-versions-sessions", _INITIAL),
)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration `conn`'s database has not had yet, each in its own transaction.

    Raises sqlite3.Error when the file is not a database this emulator can use."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY)")
    applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    for name, script in MIGRATIONS:
        if name not in applied:
            # executescript commits first and runs the script as written: BEGIN ... COMMIT
            # makes the migration and its record one transaction.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"INSERT INTO schema_migrations (name) VALUES ('{name}');\nCOMMIT;"
            )
