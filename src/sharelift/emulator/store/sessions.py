"""Upload sessions: opened against a folder and a name (or a file), filled fragment by fragment
into `data_dir/sessions/<id>`, then committed through `Files` as any other content.

A session expires `settings.upload_session_lifetime_s` after it was opened or last received a
fragment; an expired session is dropped (row and bytes) the next time anyone looks at it, and
at start-up. The HTTP side (fragments, Content-Range rules) is `graph.uploads`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from pathlib import Path

from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store.database import Database
from sharelift.emulator.store.errors import name_exists
from sharelift.emulator.store.files import Files
from sharelift.emulator.store.items import Items
from sharelift.emulator.store.records import (
    SESSION_COLS,
    Content,
    Item,
    Session,
    Stamp,
    session_from_row,
)
from sharelift.emulator.store.versions import Versions
from sharelift.quickxorhash import QuickXorHash

# ruff: noqa: S608 — queries are built from constant column lists only; values are bound.


class UploadSessions:
    """Open, follow, drop and commit upload sessions. Thread-safe."""

    def __init__(
        self,
        db: Database,
        settings: EmulatorSettings,
        data_dir: Path,
        items: Items,
        versions: Versions,
        files: Files,
    ) -> None:
        self._db = db
        self._settings = settings
        self.sessions_dir = data_dir / "sessions"
        self._items = items
        self._versions = versions
        self._files = files

    def file(self, session_id: str) -> Path:
        """Where the bytes received so far are."""
        return self.sessions_dir / session_id

    def create(
        self,
        drive_id: str,
        parent_id: str,
        name: str,
        item_id: str | None,
        conflict: str,
        stamp: Stamp,
        *,
        file_size: int | None,
        defer_commit: bool,
    ) -> Session:
        """Open an upload session for `name` in a folder (or, with `item_id`, for new content of
        that file). Checks now what can be checked now: the parent, the name, a `fail` conflict,
        the declared size against the quota; the rest is checked again at commit."""
        items = self._items
        with self._db.lock:
            parent = items.folder(drive_id, parent_id)
            items.check_new_name(parent, name, False)
            existing = items.child(drive_id, parent_id, name)
            if (
                existing is not None
                and (conflict == "fail" or existing.is_folder)
                and item_id is None
            ):
                raise name_exists()
            if file_size is not None:
                self._versions.check_quota(drive_id, file_size)
            session_id = secrets.token_urlsafe(24)
            expires = time.time() + self._settings.upload_session_lifetime_s
            self.file(session_id).touch()
            with self._db.tx() as db:
                db.execute(
                    f"INSERT INTO sessions ({SESSION_COLS}) VALUES (?,?,?,?,?,?,?,?,?,0,?,?,?)",
                    (
                        session_id,
                        drive_id,
                        parent_id,
                        name,
                        item_id,
                        conflict,
                        stamp.fs_created,
                        stamp.fs_modified,
                        file_size,
                        expires,
                        defer_commit,
                        json.dumps(stamp.by),
                    ),
                )
            session = self.get(session_id)
            assert session is not None
            return session

    def get(self, session_id: str) -> Session | None:
        """The live session, or None if unknown, finished, cancelled or expired (an expired one
        is removed on the way)."""
        with self._db.lock:
            r = self._db.one(f"SELECT {SESSION_COLS} FROM sessions WHERE id = ?", (session_id,))
            if r is None:
                return None
            session = session_from_row(r)
            if session.expires <= time.time():
                self.drop(session_id)
                return None
            return session

    def received(self, session_id: str, received: int, file_size: int) -> Session:
        """Record fragment progress; every fragment extends the session's lifetime."""
        with self._db.tx() as db:
            db.execute(
                "UPDATE sessions SET received = ?, file_size = ?, expires = ? WHERE id = ?",
                (
                    received,
                    file_size,
                    time.time() + self._settings.upload_session_lifetime_s,
                    session_id,
                ),
            )
        session = self.get(session_id)
        assert session is not None
        return session

    def drop(self, session_id: str) -> bool:
        """Forget a session and its bytes; False when there was no such session."""
        with self._db.tx() as db:
            gone = db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 1
        self.file(session_id).unlink(missing_ok=True)
        return gone

    def expire_all(self) -> int:
        """Expire every open upload session now (a fault on demand); returns how many."""
        ids = [r[0] for r in self._db.all("SELECT id FROM sessions")]
        for session_id in ids:
            self.drop(session_id)
        return len(ids)

    def drop_expired(self) -> None:
        """Drop the sessions whose time is up (at start-up: a stopped emulator left them)."""
        expired = self._db.all("SELECT id FROM sessions WHERE expires <= ?", (time.time(),))
        for (session_id,) in expired:
            self.drop(session_id)

    def commit(self, session: Session) -> tuple[Item, bool]:
        """Turn a complete session into a file (conflict behaviour applied now); returns
        (item, created). The session is gone afterwards whether or not the commit succeeded.
        Hashes the whole file: call it off the event loop."""
        hasher = QuickXorHash()
        path = self.file(session.id)
        with open(path, "rb") as f:
            while block := f.read(4 * 1024 * 1024):
                hasher.update(block)
        staged = self._files.staging_path()
        os.replace(path, staged)
        content = Content(staged, session.received, base64.b64encode(hasher.digest()).decode())
        try:
            if session.item_id is not None:
                item = self._files.replace(
                    session.drive_id, session.item_id, content, session.stamp
                )
                return item, False
            return self._files.put(
                session.drive_id,
                session.parent_id,
                session.name,
                content,
                session.conflict,
                session.stamp,
            )
        finally:
            self.drop(session.id)
