"""The emulated tenant: users, sites, drives, driveItems, versions, upload sessions, change log.

Metadata lives in SQLite (`data_dir/emulator.db`, WAL) and file content in
`data_dir/content/<version key>`; both survive a restart. One connection guarded by one lock
serialises every read-modify-write, so concurrent requests (many uploads into one folder) can
neither create two items with one name nor lose an item. Hot paths use indexes only:
children by `(drive, parent, lower(name))`, the change log by `(drive, seq)`.

Behaviour that a client can observe is Graph's; the HTTP shape of it is in `graph.py`. Errors
that Graph reports are raised as `DriveError(status, code, message)` so that the route layer can
turn them into Graph's error body without knowing why they happened.
"""

# ruff: noqa: S608 — queries are built from constant column lists only; values are bound.
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import os
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sharelift.emulator.settings import EmulatorSettings
from sharelift.errors import EmulatorError
from sharelift.quickxorhash import QuickXorHash

TIB = 1024**4
DEFAULT_QUOTA = TIB
"""OneDrive for Business starts at 1 TB; team sites get their own quota (here the same)."""

Identity = dict[str, Any]
"""A Graph identitySet: {"user": {...}} and/or {"application": {...}}."""

SYSTEM_IDENTITY: Identity = {"user": {"displayName": "System Account"}}


# ---------------------------------------------------------------------------------------------
# Public records


@dataclass(frozen=True)
class UserSpec:
    """A user to create. A `upn` without `@` gets the tenant's domain (`megan` ->
    `megan@contoso.com`). `onedrive` means the user's OneDrive is already provisioned."""

    upn: str
    display_name: str
    licensed: bool = True
    onedrive: bool = True


DEFAULT_USERS: tuple[UserSpec, ...] = (
    UserSpec("megan", "Megan Bowen"),
    UserSpec("alex", "Alex Wilber"),
    UserSpec("adele", "Adele Vance"),
    UserSpec("nestor", "Nestor Wilke", onedrive=False),
    UserSpec("lynne", "Lynne Robbins", onedrive=False),
    UserSpec("diego", "Diego Siciliani", licensed=False, onedrive=False),
)
"""The sample tenant used when no users file is given (domains filled in by `seed`)."""


@dataclass(frozen=True)
class User:
    id: str
    upn: str
    display_name: str
    licensed: bool
    drive_id: str | None


@dataclass(frozen=True)
class Site:
    id: str
    """`{hostname},{siteGuid},{webGuid}` as Graph spells site ids."""
    web_url: str
    hostname: str
    path: str
    """Server-relative path: "/" for the root site, "/sites/Team", "/personal/megan_contoso_com"."""
    display_name: str
    name: str
    created: float
    drives: list[str] = field(default_factory=list)
    """Drive ids; the default library first."""


@dataclass(frozen=True)
class Drive:
    id: str
    site_id: str
    name: str
    drive_type: str
    """"business" for a OneDrive, "documentLibrary" for a site library."""
    web_url: str
    owner_upn: str | None
    is_default: bool
    quota_total: int
    used: int
    deleted: int
    root_id: str
    created: float


@dataclass(frozen=True)
class Item:
    id: str
    drive_id: str
    parent_id: str | None
    name: str
    is_folder: bool
    size: int
    mime: str | None
    qxh: str | None
    """base64 quickXorHash of the current content (files only)."""
    content_key: str | None
    guid: str
    etag_n: int
    ctag_n: int
    version_n: int
    created: float
    modified: float
    fs_created: float
    fs_modified: float
    created_by: Identity
    modified_by: Identity
    child_count: int
    deleted: bool
    seq: int

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


@dataclass(frozen=True)
class Version:
    item_id: str
    n: int
    size: int
    content_key: str
    modified: float
    modified_by: Identity

    @property
    def label(self) -> str:
        """OneDrive for Business names major versions "1.0", "2.0", …"""
        return f"{self.n}.0"


@dataclass(frozen=True)
class Session:
    id: str
    drive_id: str
    parent_id: str
    name: str
    item_id: str | None
    """Set when the session replaces a known item's content (`/items/{id}/createUploadSession`)."""
    conflict: str
    fs_created: float | None
    fs_modified: float | None
    file_size: int | None
    """Declared size (item.fileSize), else fixed by the first fragment's Content-Range total."""
    received: int
    expires: float
    defer_commit: bool
    created_by: Identity


# ---------------------------------------------------------------------------------------------
# Errors


class DriveError(Exception):
    """A failure Graph reports to the client: HTTP status, Graph error code, message."""

    def __init__(self, status: int, code: str, message: str, inner_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code


def not_found(what: str = "The resource could not be found.") -> DriveError:
    return DriveError(404, "itemNotFound", what)


def name_exists() -> DriveError:
    # Observed body: {"code": "nameAlreadyExists", "message": "The specified item name already
    # exists."} (OneDrive/onedrive-api-docs#447, #977).
    return DriveError(409, "nameAlreadyExists", "The specified item name already exists.")


def insufficient_storage() -> DriveError:
    # Graph's error table: 507 Insufficient Storage, "The maximum storage quota has been
    # reached" (https://learn.microsoft.com/graph/errors); inner code quotaLimitReached.
    return DriveError(
        507,
        "insufficientStorage",
        "Insufficient Storage: the maximum storage quota has been reached.",
        inner_code="quotaLimitReached",
    )


class ProvisioningError(Exception):
    """A OneDrive cannot be provisioned for this user."""


class UnknownUserError(ProvisioningError):
    """No such user in the tenant."""


class UnlicensedUserError(ProvisioningError):
    """The user has no licence that includes OneDrive."""


# ---------------------------------------------------------------------------------------------
# Names and paths — "Restrictions and limitations in OneDrive and SharePoint" (support article
# 64883a5d-228e-48f5-b3d2-eb39e07630fa). Messages are the ones Graph returns for each case.

_INVALID_CHARS = re.compile(r'["*:<>?/\\|\x00-\x1f]')
_RESERVED = {
    ".lock",
    "con",
    "prn",
    "aux",
    "nul",
    "desktop.ini",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}
MAX_SEGMENT = 255
MAX_PATH = 400


def check_name(name: str, *, is_folder: bool, at_root: bool) -> None:
    """Raise DriveError(400, invalidRequest) for a name SharePoint refuses."""
    if not name or name in {".", ".."}:
        raise DriveError(400, "invalidRequest", "The provided name cannot be empty.")
    if _INVALID_CHARS.search(name):
        raise DriveError(
            400, "invalidRequest", "The provided name cannot contain any illegal characters."
        )
    if name != name.strip(" "):
        raise DriveError(
            400, "invalidRequest", "The provided name cannot contain leading, or trailing, spaces."
        )
    lower = name.lower()
    # The article lists exact names only: "CON" is refused, "con.txt" is not.
    if lower in _RESERVED:
        raise DriveError(400, "invalidRequest", "The provided name is a reserved name.")
    if "_vti_" in lower or name.startswith("~$"):
        raise DriveError(400, "invalidRequest", "The provided name is not allowed.")
    if is_folder and at_root and lower == "forms":
        # microsoft-graph-docs-contrib#8779: "Name is reserved for list forms folder."
        raise DriveError(400, "invalidRequest", "Name is reserved for list forms folder.")
    if name.endswith("."):
        # skilion/onedrive#420: "Path (/x.) contains invalid trailing character."
        raise DriveError(
            400, "invalidRequest", f"Path (/{name}) contains invalid trailing character."
        )
    if len(name) > MAX_SEGMENT:
        raise DriveError(400, "invalidRequest", "The provided name is too long.")


def split_path(path: str) -> list[str]:
    """`/a/b/` -> ["a", "b"]; empty segments are dropped as Graph does."""
    return [p for p in path.split("/") if p]


def conflict_candidate(name: str, is_folder: bool, n: int) -> str:
    """The n-th name tried by conflictBehavior=rename: `a.txt` -> `a 1.txt`, folder `a` -> `a 1`."""
    if not is_folder:
        stem, dot, ext = name.rpartition(".")
        if dot and stem:
            return f"{stem} {n}.{ext}"
    return f"{name} {n}"


def mime_for(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _new_item_id() -> str:
    # ODB item ids are 34 characters: "01" + 32 base32 characters.
    return "01" + base64.b32encode(os.urandom(20)).decode("ascii")[:32]


def _drive_id(site_guid: uuid.UUID, web_guid: uuid.UUID, list_guid: uuid.UUID) -> str:
    # Graph's SharePoint drive ids are "b!" + base64url(site guid, web guid, list guid).
    raw = site_guid.bytes_le + web_guid.bytes_le + list_guid.bytes_le
    return "b!" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def personal_path(upn: str) -> str:
    """`megan@contoso.com` -> `/personal/megan_contoso_com`."""
    return "/personal/" + re.sub(r"[.@]", "_", upn.lower())


# ---------------------------------------------------------------------------------------------

_SCHEMA = """
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

_ITEM_COLS = (
    "id, drive_id, parent_id, name, is_folder, size, mime, qxh, content_key, guid, etag_n, "
    "ctag_n, version_n, created, modified, fs_created, fs_modified, created_by, modified_by, "
    "child_count, deleted, seq"
)


def _item(row: sqlite3.Row | tuple[Any, ...]) -> Item:
    r = tuple(row)
    return Item(
        id=r[0],
        drive_id=r[1],
        parent_id=r[2],
        name=r[3],
        is_folder=bool(r[4]),
        size=r[5],
        mime=r[6],
        qxh=r[7],
        content_key=r[8],
        guid=r[9],
        etag_n=r[10],
        ctag_n=r[11],
        version_n=r[12],
        created=r[13],
        modified=r[14],
        fs_created=r[15],
        fs_modified=r[16],
        created_by=json.loads(r[17]),
        modified_by=json.loads(r[18]),
        child_count=r[19],
        deleted=bool(r[20]),
        seq=r[21],
    )


_DRIVE_COLS = (
    "id, site_id, name, drive_type, web_url, owner_upn, is_default, quota_total, used, "
    "deleted, root_id, created"
)


def _drive(r: tuple[Any, ...]) -> Drive:
    return Drive(
        id=r[0],
        site_id=r[1],
        name=r[2],
        drive_type=r[3],
        web_url=r[4],
        owner_upn=r[5],
        is_default=bool(r[6]),
        quota_total=r[7],
        used=r[8],
        deleted=r[9],
        root_id=r[10],
        created=r[11],
    )


_SESSION_COLS = (
    "id, drive_id, parent_id, name, item_id, conflict, fs_created, fs_modified, file_size, "
    "received, expires, defer_commit, created_by"
)


def _session(r: tuple[Any, ...]) -> Session:
    return Session(
        id=r[0],
        drive_id=r[1],
        parent_id=r[2],
        name=r[3],
        item_id=r[4],
        conflict=r[5],
        fs_created=r[6],
        fs_modified=r[7],
        file_size=r[8],
        received=r[9],
        expires=r[10],
        defer_commit=bool(r[11]),
        created_by=json.loads(r[12]),
    )


@dataclass(frozen=True)
class Content:
    """A file body staged in the store's tmp folder, with its size and quickXorHash (base64)."""

    path: Path
    size: int
    qxh: str


class Store:
    """The tenant model. Use `Store.open(settings)`; every method is thread-safe."""

    def __init__(self, settings: EmulatorSettings, conn: sqlite3.Connection) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.content_dir = self.data_dir / "content"
        self.tmp_dir = self.data_dir / "tmp"
        self.sessions_dir = self.data_dir / "sessions"
        self._db = conn
        self._lock = threading.RLock()
        self._seq: int = int(self._scalar("SELECT COALESCE(MAX(seq), 0) FROM items"))
        secret = self._meta("secret")
        if secret is None:
            secret = secrets.token_hex(32)
            self._set_meta("secret", secret)
        self._secret = bytes.fromhex(secret)

    # -- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: EmulatorSettings) -> Store:
        """Create `settings.data_dir` (and its database) or reopen it.

        Raises EmulatorError when the folder or its database cannot be used."""
        data_dir = Path(settings.data_dir)
        try:
            for sub in ("content", "tmp", "sessions"):
                (data_dir / sub).mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                data_dir / "emulator.db", check_same_thread=False, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise EmulatorError(
                f"cannot use {data_dir} as the emulator's data folder: {exc}"
            ) from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise EmulatorError(
                f"{data_dir / 'emulator.db'} is not an emulator database: {exc}"
            ) from exc
        store = cls(settings, conn)
        store._sweep()
        return store

    def _sweep(self) -> None:
        """Forget what a stopped emulator left behind: staged bodies and expired sessions."""
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
        with self._lock:
            expired = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM sessions WHERE expires <= ?", (time.time(),)
                )
            ]
        for session_id in expired:
            self.drop_session(session_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    @property
    def hostname(self) -> str:
        return f"{self.tenant}.sharepoint.com"

    @property
    def my_hostname(self) -> str:
        return f"{self.tenant}-my.sharepoint.com"

    # -- small SQL helpers ----------------------------------------------------------------------

    def _scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def _meta(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def _set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    class _Tx:
        def __init__(self, store: Store) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            try:
                self.store._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            finally:
                self.store._lock.release()

    def _tx(self) -> Store._Tx:
        return Store._Tx(self)

    # -- tenant: users, sites, drives -------------------------------------------------------------

    def seed(self, users: Sequence[UserSpec] = DEFAULT_USERS) -> None:
        """Create the sites (once) and the users; existing users are left as they are, so calling
        this again on every start is harmless. OneDrives are provisioned for `onedrive` users."""
        with self._lock:
            if self._meta("seeded") is None:
                self._seed_sites()
                self._set_meta("seeded", "1")
            for spec in users:
                upn = spec.upn if "@" in spec.upn else f"{spec.upn}@{self.tenant}.com"
                if self.user(upn) is None:
                    self._db.execute(
                        "INSERT INTO users VALUES (?, ?, ?, ?, ?, NULL)",
                        (str(uuid.uuid4()), upn, upn.lower(), spec.display_name, spec.licensed),
                    )
                    if spec.onedrive and spec.licensed:
                        self.provision_onedrive(upn)

    def _seed_sites(self) -> None:
        root = self._create_site(self.hostname, "/", "Communication site", "")
        self._create_drive(root, "Documents", "Shared Documents", "documentLibrary", None, True)
        team = self._create_site(self.hostname, "/sites/Team", "Team", "Team")
        self._create_drive(team, "Documents", "Shared Documents", "documentLibrary", None, True)
        self._create_drive(team, "Archive", "Archive", "documentLibrary", None, False)
        marketing = self._create_site(self.hostname, "/sites/Marketing", "Marketing", "Marketing")
        self._create_drive(
            marketing, "Documents", "Shared Documents", "documentLibrary", None, True
        )

    def _create_site(self, hostname: str, path: str, display_name: str, name: str) -> str:
        site_id = f"{hostname},{uuid.uuid4()},{uuid.uuid4()}"
        web_url = f"https://{hostname}{'' if path == '/' else path}"
        with self._tx() as db:
            db.execute(
                "INSERT INTO sites VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (site_id, hostname, path, path.lower(), web_url, display_name, name, time.time()),
            )
        return site_id

    def _create_drive(
        self,
        site_id: str,
        name: str,
        url_segment: str,
        drive_type: str,
        owner_upn: str | None,
        is_default: bool,
    ) -> str:
        _, site_guid, web_guid = site_id.split(",")
        drive_id = _drive_id(uuid.UUID(site_guid), uuid.UUID(web_guid), uuid.uuid4())
        site = self.site(site_id)
        assert site is not None
        root_id = _new_item_id()
        now = time.time()
        identity = (
            {"user": {"displayName": owner_upn, "email": owner_upn}}
            if owner_upn
            else SYSTEM_IDENTITY
        )
        with self._tx() as db:
            db.execute(
                f"INSERT INTO drives ({_DRIVE_COLS}) VALUES (?,?,?,?,?,?,?,?,0,0,?,?)",
                (
                    drive_id,
                    site_id,
                    name,
                    drive_type,
                    f"{site.web_url}/{quote(url_segment)}",
                    owner_upn,
                    is_default,
                    DEFAULT_QUOTA,
                    root_id,
                    now,
                ),
            )
            self._insert_item(
                db, root_id, drive_id, None, "root", True, 0, None, None, None, now, now, identity
            )
        return drive_id

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, upn, display_name, licensed, drive_id FROM users ORDER BY upn_lower"
            ).fetchall()
        return [User(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def user(self, upn_or_id: str) -> User | None:
        with self._lock:
            r = self._db.execute(
                "SELECT id, upn, display_name, licensed, drive_id FROM users "
                "WHERE upn_lower = ? OR id = ?",
                (upn_or_id.lower(), upn_or_id.lower()),
            ).fetchone()
        return None if r is None else User(r[0], r[1], r[2], bool(r[3]), r[4])

    def provision_onedrive(self, upn: str) -> str:
        """Create the user's personal site and OneDrive unless it exists; return the drive id.

        Raises UnknownUserError or UnlicensedUserError."""
        with self._lock:
            user = self.user(upn)
            if user is None:
                raise UnknownUserError(f"no user {upn!r} in tenant {self.tenant!r}")
            if not user.licensed:
                raise UnlicensedUserError(f"user {user.upn!r} has no OneDrive licence")
            if user.drive_id is not None:
                return user.drive_id
            site_id = self._create_site(
                self.my_hostname, personal_path(user.upn), user.display_name, user.upn
            )
            drive_id = self._create_drive(
                site_id, "OneDrive", "Documents", "business", user.upn, True
            )
            self._db.execute("UPDATE users SET drive_id = ? WHERE id = ?", (drive_id, user.id))
            return drive_id

    def _sites(self, where: str, args: Sequence[Any]) -> list[Site]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, web_url, hostname, path, display_name, name, created FROM sites "
                f"WHERE {where} ORDER BY created",
                args,
            ).fetchall()
            result = []
            for r in rows:
                drives = [
                    d[0]
                    for d in self._db.execute(
                        "SELECT id FROM drives WHERE site_id = ? ORDER BY is_default DESC, created",
                        (r[0],),
                    )
                ]
                result.append(Site(r[0], r[1], r[2], r[3], r[4], r[5], r[6], drives))
        return result

    def sites(self) -> list[Site]:
        """Every site: the root site, team sites, personal sites."""
        return self._sites("1", ())

    def site(self, site_id: str) -> Site | None:
        found = self._sites("lower(id) = ?", (site_id.lower(),))
        return found[0] if found else None

    def site_by_path(self, hostname: str, path: str) -> Site | None:
        path = "/" + "/".join(split_path(path))
        found = self._sites("hostname = ? AND path_lower = ?", (hostname.lower(), path.lower()))
        return found[0] if found else None

    def drive(self, drive_id: str) -> Drive | None:
        with self._lock:
            r = self._db.execute(
                f"SELECT {_DRIVE_COLS} FROM drives WHERE id = ?", (drive_id,)
            ).fetchone()
        return None if r is None else _drive(r)

    def drives(self, site_id: str) -> list[Drive]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_DRIVE_COLS} FROM drives WHERE site_id = ? "
                "ORDER BY is_default DESC, created",
                (site_id,),
            ).fetchall()
        return [_drive(r) for r in rows]

    def drives_summary(self) -> list[dict[str, Any]]:
        """One entry per drive for emulator.json: id, name, driveType, webUrl, owner."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.id, d.name, d.drive_type, d.web_url, d.owner_upn, s.web_url "
                "FROM drives d JOIN sites s ON s.id = d.site_id ORDER BY d.created"
            ).fetchall()
        return [
            {"id": r[0], "name": r[1], "driveType": r[2], "webUrl": r[3], "owner": r[4] or r[5]}
            for r in rows
        ]

    def set_quota(self, drive_id: str, total: int) -> None:
        with self._tx() as db:
            if (
                db.execute(
                    "UPDATE drives SET quota_total = ? WHERE id = ?", (total, drive_id)
                ).rowcount
                != 1
            ):
                raise KeyError(drive_id)

    # -- items: reads ---------------------------------------------------------------------------

    def item(self, drive_id: str, item_id: str) -> Item | None:
        with self._lock:
            r = self._db.execute(
                f"SELECT {_ITEM_COLS} FROM items WHERE id = ? AND drive_id = ? AND deleted = 0",
                (item_id, drive_id),
            ).fetchone()
        return None if r is None else _item(r)

    def child(self, drive_id: str, parent_id: str, name: str) -> Item | None:
        with self._lock:
            r = self._db.execute(
                f"SELECT {_ITEM_COLS} FROM items "
                "WHERE drive_id = ? AND parent_id = ? AND name_lower = ? AND deleted = 0",
                (drive_id, parent_id, name.lower()),
            ).fetchone()
        return None if r is None else _item(r)

    def resolve(self, drive_id: str, base_id: str, rel_path: str) -> Item | None:
        """The item at `rel_path` below `base_id` (case-insensitive), or None."""
        with self._lock:
            item = self.item(drive_id, base_id)
            for segment in split_path(rel_path):
                if item is None or not item.is_folder:
                    return None
                item = self.child(drive_id, item.id, segment)
            return item

    def path_of(self, item: Item) -> str:
        """The item's path below the root: "" for the root, "/a/b" otherwise."""
        parts: list[str] = []
        with self._lock:
            current: tuple[Any, ...] | None = (item.parent_id, item.name)
            while current is not None and current[0] is not None:
                parts.append(current[1])
                current = self._db.execute(
                    "SELECT parent_id, name FROM items WHERE id = ?", (current[0],)
                ).fetchone()
        return "".join("/" + p for p in reversed(parts))

    def children(self, drive_id: str, parent_id: str, after: str | None, limit: int) -> list[Item]:
        """Children ordered by lower-case name, starting after the lower-case name `after`."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ITEM_COLS} FROM items WHERE drive_id = ? AND parent_id = ? "
                "AND deleted = 0 AND name_lower > ? ORDER BY name_lower LIMIT ?",
                (drive_id, parent_id, after or "", limit),
            ).fetchall()
        return [_item(r) for r in rows]

    def versions(self, item: Item) -> list[Version]:
        """All versions of a file, newest first (the current one included)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT item_id, n, size, content_key, modified, modified_by FROM versions "
                "WHERE item_id = ? ORDER BY n DESC",
                (item.id,),
            ).fetchall()
        return [Version(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def content_path(self, content_key: str) -> Path:
        return self.content_dir / content_key

    # -- items: writes --------------------------------------------------------------------------

    def _insert_item(
        self,
        db: sqlite3.Connection,
        item_id: str,
        drive_id: str,
        parent_id: str | None,
        name: str,
        is_folder: bool,
        size: int,
        qxh: str | None,
        content_key: str | None,
        fs_created: float | None,
        now: float,
        fs_modified: float | None,
        by: Identity,
    ) -> None:
        by_json = json.dumps(by)
        db.execute(
            f"INSERT INTO items ({_ITEM_COLS}, name_lower) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,1,1,?,?,?,?,?,?,?,0,0,?,?)",
            (
                item_id,
                drive_id,
                parent_id,
                name,
                is_folder,
                size,
                None if is_folder else mime_for(name),
                qxh,
                content_key,
                str(uuid.uuid4()).upper(),
                0 if is_folder else 1,
                now,
                now,
                fs_created if fs_created is not None else now,
                fs_modified if fs_modified is not None else now,
                by_json,
                by_json,
                self._next_seq(),
                name.lower(),
            ),
        )
        if parent_id is not None:
            db.execute("UPDATE items SET child_count = child_count + 1 WHERE id = ?", (parent_id,))

    def _folder(self, drive_id: str, folder_id: str) -> Item:
        parent = self.item(drive_id, folder_id)
        if parent is None:
            raise not_found()
        if not parent.is_folder:
            raise DriveError(400, "invalidRequest", "The parent item is not a folder.")
        return parent

    def _check_new_name(self, parent: Item, name: str, is_folder: bool) -> None:
        check_name(name, is_folder=is_folder, at_root=parent.is_root)
        if len(self.path_of(parent)) + 1 + len(name) > MAX_PATH:
            raise DriveError(
                400,
                "invalidRequest",
                "The URL path for all files and folders must be 400 characters or less.",
            )

    def _free_name(self, drive_id: str, parent_id: str, name: str, is_folder: bool) -> str:
        candidate, n = name, 0
        while self.child(drive_id, parent_id, candidate) is not None:
            n += 1
            candidate = conflict_candidate(name, is_folder, n)
        return candidate

    def create_folder(
        self,
        drive_id: str,
        parent_id: str,
        name: str,
        conflict: str,
        by: Identity,
        fs_created: float | None = None,
        fs_modified: float | None = None,
    ) -> tuple[Item, bool]:
        """Create a folder; returns (folder, created). conflict: fail | replace | rename.

        With replace an existing folder is kept as it is (and returned, created=False), as
        observed on OneDrive (OneDrive/onedrive-api-docs#1162: 200 with the folder); an existing
        file of that name is replaced by the new folder."""
        with self._lock:
            parent = self._folder(drive_id, parent_id)
            self._check_new_name(parent, name, True)
            existing = self.child(drive_id, parent_id, name)
            if existing is not None:
                if conflict == "rename":
                    name = self._free_name(drive_id, parent_id, name, True)
                elif conflict == "replace" and existing.is_folder:
                    return existing, False
                elif conflict == "replace":
                    self.delete(drive_id, existing.id)
                else:
                    raise name_exists()
            item_id = _new_item_id()
            now = time.time()
            with self._tx() as db:
                self._insert_item(
                    db,
                    item_id,
                    drive_id,
                    parent_id,
                    name,
                    True,
                    0,
                    None,
                    None,
                    fs_created,
                    now,
                    fs_modified,
                    by,
                )
            item = self.item(drive_id, item_id)
            assert item is not None
            return item, True

    def stage(self, chunks: Iterable[bytes]) -> Content:
        """Write a body to a tmp file while hashing it (for callers with the bytes in hand)."""
        path = self.tmp_dir / uuid.uuid4().hex
        hasher = QuickXorHash()
        size = 0
        with open(path, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                hasher.update(chunk)
                size += len(chunk)
        return Content(path, size, base64.b64encode(hasher.digest()).decode("ascii"))

    def _quota_check(self, drive_id: str, extra: int) -> None:
        drive = self.drive(drive_id)
        assert drive is not None
        if drive.used + extra > drive.quota_total:
            raise insufficient_storage()

    def _add_version(
        self,
        db: sqlite3.Connection,
        item_id: str,
        n: int,
        size: int,
        key: str,
        now: float,
        by: Identity,
        drive_id: str,
    ) -> None:
        db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, n, size, key, now, json.dumps(by)),
        )
        db.execute("UPDATE drives SET used = used + ? WHERE id = ?", (size, drive_id))

    def put_file(
        self,
        drive_id: str,
        parent_id: str,
        name: str,
        content: Content,
        conflict: str,
        by: Identity,
        fs_created: float | None = None,
        fs_modified: float | None = None,
    ) -> tuple[Item, bool]:
        """Create the file `name` in a folder, or add a version to the existing one.

        Returns (item, created). `content` is moved into the store. conflict: fail (409 when the
        name exists), replace (new version of the existing file), rename (`name 1.ext`)."""
        try:
            with self._lock:
                parent = self._folder(drive_id, parent_id)
                self._check_new_name(parent, name, False)
                existing = self.child(drive_id, parent_id, name)
                if existing is not None:
                    if conflict == "rename":
                        name = self._free_name(drive_id, parent_id, name, False)
                    elif conflict == "replace" and not existing.is_folder:
                        return self.replace_content(
                            drive_id, existing.id, content, by, fs_created, fs_modified
                        ), False
                    else:
                        raise name_exists()
                self._quota_check(drive_id, content.size)
                item_id = _new_item_id()
                key = uuid.uuid4().hex
                os.replace(content.path, self.content_path(key))
                now = time.time()
                with self._tx() as db:
                    self._insert_item(
                        db,
                        item_id,
                        drive_id,
                        parent_id,
                        name,
                        False,
                        content.size,
                        content.qxh,
                        key,
                        fs_created,
                        now,
                        fs_modified,
                        by,
                    )
                    self._add_version(db, item_id, 1, content.size, key, now, by, drive_id)
                    self._grow(db, parent_id, content.size)
                item = self.item(drive_id, item_id)
                assert item is not None
                return item, True
        finally:
            content.path.unlink(missing_ok=True)

    def replace_content(
        self,
        drive_id: str,
        item_id: str,
        content: Content,
        by: Identity,
        fs_created: float | None = None,
        fs_modified: float | None = None,
    ) -> Item:
        """New content for an existing file: a new version, counted against the quota."""
        try:
            with self._lock:
                item = self.item(drive_id, item_id)
                if item is None:
                    raise not_found()
                if item.is_folder:
                    raise DriveError(400, "invalidRequest", "Cannot upload content to a folder.")
                self._quota_check(drive_id, content.size)
                key = uuid.uuid4().hex
                os.replace(content.path, self.content_path(key))
                now = time.time()
                with self._tx() as db:
                    db.execute(
                        "UPDATE items SET size = ?, qxh = ?, content_key = ?, etag_n = etag_n + 1,"
                        " ctag_n = ctag_n + 1, version_n = version_n + 1, modified = ?,"
                        " fs_created = COALESCE(?, fs_created), fs_modified = ?,"
                        " modified_by = ?, seq = ? WHERE id = ?",
                        (
                            content.size,
                            content.qxh,
                            key,
                            now,
                            fs_created,
                            fs_modified if fs_modified is not None else now,
                            json.dumps(by),
                            self._next_seq(),
                            item_id,
                        ),
                    )
                    self._add_version(
                        db, item_id, item.version_n + 1, content.size, key, now, by, drive_id
                    )
                    assert item.parent_id is not None
                    self._grow(db, item.parent_id, content.size - item.size)
                updated = self.item(drive_id, item_id)
                assert updated is not None
                return updated
        finally:
            content.path.unlink(missing_ok=True)

    def update(
        self,
        drive_id: str,
        item_id: str,
        by: Identity,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        fs_created: float | None = None,
        fs_modified: float | None = None,
        conflict: str = "fail",
    ) -> Item:
        """PATCH: rename, move, set fileSystemInfo. On a file, a change of fileSystemInfo adds a
        version that counts against the quota, as OneDrive for Business does (rclone's OneDrive
        docs, section "Versions": changing a file's modification time creates a second version,
        so the file apparently uses twice the space)."""
        with self._lock:
            item = self.item(drive_id, item_id)
            if item is None:
                raise not_found()
            if item.is_root and (name is not None or parent_id is not None):
                raise DriveError(400, "invalidRequest", "The root cannot be renamed or moved.")
            new_parent_id = parent_id or item.parent_id
            new_name = name if name is not None else item.name
            moved = new_parent_id != item.parent_id
            renamed = new_name != item.name
            if moved or renamed:
                assert new_parent_id is not None
                parent = self._folder(drive_id, new_parent_id)
                if moved and item.is_folder:
                    probe: Item | None = parent
                    while probe is not None:
                        if probe.id == item.id:
                            raise DriveError(
                                400, "invalidRequest", "Cannot move a folder into itself."
                            )
                        probe = (
                            None
                            if probe.parent_id is None
                            else self.item(drive_id, probe.parent_id)
                        )
                if moved or new_name.lower() != item.name.lower():
                    self._check_new_name(parent, new_name, item.is_folder)
                    existing = self.child(drive_id, new_parent_id, new_name)
                    if existing is not None and existing.id != item.id:
                        if conflict == "rename":
                            new_name = self._free_name(
                                drive_id, new_parent_id, new_name, item.is_folder
                            )
                        elif conflict == "replace":
                            self.delete(drive_id, existing.id)
                        else:
                            raise name_exists()
                else:
                    check_name(new_name, is_folder=item.is_folder, at_root=parent.is_root)
            fs_changed = fs_created is not None or fs_modified is not None
            new_version = fs_changed and not item.is_folder
            if new_version:
                self._quota_check(drive_id, item.size)
            now = time.time()
            with self._tx() as db:
                db.execute(
                    "UPDATE items SET name = ?, name_lower = ?, parent_id = ?, "
                    "fs_created = COALESCE(?, fs_created), fs_modified = COALESCE(?, fs_modified),"
                    " etag_n = etag_n + 1, modified = ?, modified_by = ?, seq = ?,"
                    " version_n = version_n + ? WHERE id = ?",
                    (
                        new_name,
                        new_name.lower(),
                        new_parent_id,
                        fs_created,
                        fs_modified,
                        now,
                        json.dumps(by),
                        self._next_seq(),
                        int(new_version),
                        item_id,
                    ),
                )
                if moved:
                    db.execute(
                        "UPDATE items SET child_count = child_count - 1 WHERE id = ?",
                        (item.parent_id,),
                    )
                    db.execute(
                        "UPDATE items SET child_count = child_count + 1 WHERE id = ?",
                        (new_parent_id,),
                    )
                    assert item.parent_id is not None and new_parent_id is not None
                    self._grow(db, item.parent_id, -item.size)
                    self._grow(db, new_parent_id, item.size)
                if (moved or renamed) and item.is_folder:
                    # Everything below has a new path: it is reported again by delta, after
                    # the folder, so that a delta page always lists a parent before its children.
                    self._touch_descendants(db, item_id)
                if new_version:
                    assert item.content_key is not None
                    self._add_version(
                        db,
                        item_id,
                        item.version_n + 1,
                        item.size,
                        item.content_key,
                        now,
                        by,
                        drive_id,
                    )
            updated = self.item(drive_id, item_id)
            assert updated is not None
            return updated

    def copy(
        self,
        drive_id: str,
        item_id: str,
        parent_id: str,
        name: str | None,
        conflict: str,
        by: Identity,
    ) -> Item:
        """Copy an item (a folder with everything below it) into a folder of the same drive.

        The copies share the originals' content files (content is never rewritten in place) and
        count against the quota like new uploads. Returns the top copy."""
        with self._lock:
            source = self.item(drive_id, item_id)
            if source is None:
                raise not_found()
            if source.is_root:
                raise DriveError(400, "invalidRequest", "The root of a drive cannot be copied.")
            parent = self._folder(drive_id, parent_id)
            target_name = name or source.name
            self._check_new_name(parent, target_name, source.is_folder)
            if self.child(drive_id, parent_id, target_name) is not None:
                if conflict != "rename":
                    raise name_exists()
                target_name = self._free_name(drive_id, parent_id, target_name, source.is_folder)
            probe: Item | None = parent
            while probe is not None:
                if probe.id == source.id:
                    raise DriveError(400, "invalidRequest", "Cannot copy a folder into itself.")
                probe = None if probe.parent_id is None else self.item(drive_id, probe.parent_id)
            self._quota_check(drive_id, source.size)
            now = time.time()
            with self._tx() as db:
                top = self._copy_into(db, drive_id, source, parent_id, target_name, now, by)
                self._grow(db, parent_id, source.size)
            copied = self.item(drive_id, top)
            assert copied is not None
            return copied

    def _copy_into(
        self,
        db: sqlite3.Connection,
        drive_id: str,
        source: Item,
        parent_id: str,
        name: str,
        now: float,
        by: Identity,
    ) -> str:
        new_id = _new_item_id()
        self._insert_item(
            db,
            new_id,
            drive_id,
            parent_id,
            name,
            source.is_folder,
            source.size,
            source.qxh,
            source.content_key,
            source.fs_created,
            now,
            source.fs_modified,
            by,
        )
        if source.is_folder:
            for child in self.children(drive_id, source.id, None, 1 << 30):
                self._copy_into(db, drive_id, child, new_id, child.name, now, by)
        else:
            assert source.content_key is not None
            self._add_version(db, new_id, 1, source.size, source.content_key, now, by, drive_id)
        return new_id

    def _grow(self, db: sqlite3.Connection, folder_id: str, delta: int) -> None:
        """Add `delta` bytes to a folder's size and to every folder above it: a folder's size
        is the total size of the files below it, as OneDrive for Business reports it."""
        if delta:
            db.execute(
                "WITH RECURSIVE up(id) AS (SELECT ? UNION ALL SELECT i.parent_id FROM items i "
                "JOIN up ON i.id = up.id WHERE i.parent_id IS NOT NULL) "
                "UPDATE items SET size = size + ? WHERE id IN (SELECT id FROM up)",
                (folder_id, delta),
            )

    def _touch_descendants(self, db: sqlite3.Connection, folder_id: str) -> None:
        below = [
            r[0]
            for r in db.execute(
                "WITH RECURSIVE sub(id) AS (SELECT id FROM items WHERE parent_id = ? "
                "AND deleted = 0 UNION ALL SELECT i.id FROM items i JOIN sub "
                "ON i.parent_id = sub.id WHERE i.deleted = 0) SELECT id FROM sub",
                (folder_id,),
            )
        ]
        for child_id in below:
            db.execute("UPDATE items SET seq = ? WHERE id = ?", (self._next_seq(), child_id))

    def delete(self, drive_id: str, item_id: str) -> None:
        """Delete an item and everything below it (to the recycle bin: the bytes move from
        quota `used` to `deleted`). The items stay as tombstones for delta."""
        with self._lock:
            item = self.item(drive_id, item_id)
            if item is None:
                raise not_found()
            if item.is_root:
                raise DriveError(403, "accessDenied", "The root of a drive cannot be deleted.")
            with self._tx() as db:
                ids = [
                    r[0]
                    for r in db.execute(
                        "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL "
                        "SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id "
                        "WHERE i.deleted = 0) SELECT id FROM sub",
                        (item_id,),
                    )
                ]
                freed = 0
                for chunk_start in range(0, len(ids), 500):
                    chunk = ids[chunk_start : chunk_start + 500]
                    marks = ",".join("?" * len(chunk))
                    freed += db.execute(
                        f"SELECT COALESCE(SUM(size), 0) FROM versions WHERE item_id IN ({marks})",
                        chunk,
                    ).fetchone()[0]
                for deleted_id in ids:
                    db.execute(
                        "UPDATE items SET deleted = 1, seq = ? WHERE id = ?",
                        (self._next_seq(), deleted_id),
                    )
                db.execute(
                    "UPDATE items SET child_count = child_count - 1 WHERE id = ?",
                    (item.parent_id,),
                )
                assert item.parent_id is not None
                self._grow(db, item.parent_id, -item.size)
                db.execute(
                    "UPDATE drives SET used = used - ?, deleted = deleted + ? WHERE id = ?",
                    (freed, freed, drive_id),
                )

    # -- delta ----------------------------------------------------------------------------------

    def changes(self, drive_id: str, after_seq: int, limit: int) -> list[Item]:
        """Items (tombstones included) changed after `after_seq`, oldest change first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ITEM_COLS} FROM items WHERE drive_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (drive_id, after_seq, limit),
            ).fetchall()
        return [_item(r) for r in rows]

    def current_seq(self) -> int:
        with self._lock:
            return self._seq

    def delta_epoch(self, drive_id: str) -> int:
        """Delta tokens carry this number; tokens of an older epoch answer 410."""
        return int(self._scalar("SELECT delta_epoch FROM drives WHERE id = ?", (drive_id,)) or 0)

    def expire_delta_tokens(self, drive_id: str) -> None:
        """Make every delta token issued so far for this drive answer 410 (resync)."""
        with self._tx() as db:
            db.execute("UPDATE drives SET delta_epoch = delta_epoch + 1 WHERE id = ?", (drive_id,))

    # -- signed tokens (download URLs) ----------------------------------------------------------

    def sign(self, payload: str) -> str:
        """A tamper-proof token carrying `payload` (for pre-authenticated URLs)."""
        raw = payload.encode()
        mac = hmac.new(self._secret, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(raw + mac).decode("ascii").rstrip("=")

    def unsign(self, token: str) -> str | None:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            return None
        raw, mac = blob[:-16], blob[-16:]
        good = hmac.new(self._secret, raw, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, good):
            return None
        return raw.decode("utf-8", "replace")

    # -- upload sessions ------------------------------------------------------------------------

    def create_session(
        self,
        drive_id: str,
        parent_id: str,
        name: str,
        item_id: str | None,
        conflict: str,
        by: Identity,
        *,
        fs_created: float | None,
        fs_modified: float | None,
        file_size: int | None,
        defer_commit: bool,
    ) -> Session:
        """Open an upload session. Checks now what can be checked now: the parent, the name, a
        `fail` conflict, the declared size against the quota."""
        with self._lock:
            parent = self._folder(drive_id, parent_id)
            self._check_new_name(parent, name, False)
            existing = self.child(drive_id, parent_id, name)
            if (
                existing is not None
                and (conflict == "fail" or existing.is_folder)
                and (item_id is None)
            ):
                raise name_exists()
            if file_size is not None:
                self._quota_check(drive_id, file_size)
            session_id = secrets.token_urlsafe(24)
            expires = time.time() + self.settings.upload_session_lifetime_s
            self.session_file(session_id).touch()
            with self._tx() as db:
                db.execute(
                    f"INSERT INTO sessions ({_SESSION_COLS}) VALUES (?,?,?,?,?,?,?,?,?,0,?,?,?)",
                    (
                        session_id,
                        drive_id,
                        parent_id,
                        name,
                        item_id,
                        conflict,
                        fs_created,
                        fs_modified,
                        file_size,
                        expires,
                        defer_commit,
                        json.dumps(by),
                    ),
                )
            session = self.session(session_id)
            assert session is not None
            return session

    def expire_sessions(self) -> int:
        """Expire every open upload session now (a fault on demand); returns how many."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM sessions")]
        for session_id in ids:
            self.drop_session(session_id)
        return len(ids)

    def session_file(self, session_id: str) -> Path:
        return self.sessions_dir / session_id

    def session(self, session_id: str) -> Session | None:
        """The live session, or None if unknown, finished, cancelled or expired (an expired one
        is removed on the way)."""
        with self._lock:
            r = self._db.execute(
                f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if r is None:
                return None
            session = _session(r)
            if session.expires <= time.time():
                self.drop_session(session_id)
                return None
            return session

    def session_received(self, session_id: str, received: int, file_size: int) -> Session:
        """Record fragment progress; every fragment extends the session's lifetime."""
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET received = ?, file_size = ?, expires = ? WHERE id = ?",
                (
                    received,
                    file_size,
                    time.time() + self.settings.upload_session_lifetime_s,
                    session_id,
                ),
            )
        session = self.session(session_id)
        assert session is not None
        return session

    def drop_session(self, session_id: str) -> bool:
        with self._tx() as db:
            gone = db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 1
        self.session_file(session_id).unlink(missing_ok=True)
        return gone

    def commit_session(self, session: Session) -> tuple[Item, bool]:
        """Turn a complete session into a file (conflict behaviour applied now). The session
        is gone afterwards whether or not the commit succeeded."""
        hasher = QuickXorHash()
        path = self.session_file(session.id)
        with open(path, "rb") as f:
            while block := f.read(4 * 1024 * 1024):
                hasher.update(block)
        staged = self.tmp_dir / uuid.uuid4().hex
        os.replace(path, staged)
        content = Content(staged, session.received, base64.b64encode(hasher.digest()).decode())
        try:
            if session.item_id is not None:
                item = self.replace_content(
                    session.drive_id,
                    session.item_id,
                    content,
                    session.created_by,
                    session.fs_created,
                    session.fs_modified,
                )
                result = (item, False)
            else:
                result = self.put_file(
                    session.drive_id,
                    session.parent_id,
                    session.name,
                    content,
                    session.conflict,
                    session.created_by,
                    session.fs_created,
                    session.fs_modified,
                )
        finally:
            self.drop_session(session.id)
        return result
