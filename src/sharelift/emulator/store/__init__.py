"""The emulated tenant: users, sites, drives, driveItems, versions, upload sessions, change log.

Metadata lives in SQLite (`data_dir/emulator.db`, WAL) and file content in
`data_dir/content/<version key>`; both survive a restart. Behaviour a client can observe is
Graph's; the HTTP shape of it is in `sharelift.emulator.graph`. Errors Graph reports are raised
as `DriveError(status, code, message)`.

`Store.open(settings)` gives the tenant as a few role objects, one per module:

    store.tenant     tenant.py    users, sites, drives; the sample tenant; OneDrive provisioning
    store.items      items.py     the item tree: look up by id / name / path / unique id,
                                  children, delete; an imported item's ids, times, authors
    store.folders    folders.py   create a folder, or every missing folder of a path
    store.files      files.py     stage content; commit it as a new file or a new version
                                  (the one commit path, with its commit hooks)
    store.edits      edits.py     rename, move, fileSystemInfo (PATCH); copy
    store.versions   versions.py  versions of a file, and the quota they use
    store.sessions   sessions.py  upload sessions
    store.changes    changes.py   the change log behind delta
    store.signer     signing.py   tokens of pre-authenticated URLs
                     database.py  the connection, its lock, transactions; schema.py its schema
                     records.py   the records (User, Site, Drive, Item, Version, Session, …)
                     names.py     SharePoint's naming rules; errors.py the errors

Writing into a drive from anywhere (Graph, or an import of packages): find the drive
(`tenant.drive(id)`, `tenant.drives(site_id)`), the folder (`items.resolve(drive_id,
drive.root_id, "a/b")`, or `folders.ensure(drive_id, drive.root_id, ["a", "b"], stamp)` to
create what is missing), then `folders.create(...)` or `files.put(drive_id, folder_id, name,
files.stage(chunks), conflict, Stamp(by, fs_created, fs_modified))`. An import that keeps
the source's ids finds items with `items.by_unique_id(...)` and sets them with
`items.set_origin(...)` (the Migration API does). Every method is thread-safe.
"""

from __future__ import annotations

from pathlib import Path

from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store.changes import ChangeLog
from sharelift.emulator.store.database import Database
from sharelift.emulator.store.edits import Edits
from sharelift.emulator.store.errors import (
    DriveError,
    ProvisioningError,
    UnknownUserError,
    UnlicensedUserError,
    name_exists,
    not_found,
)
from sharelift.emulator.store.files import CommitHook, Files
from sharelift.emulator.store.folders import Folders
from sharelift.emulator.store.items import Items
from sharelift.emulator.store.names import check_name, conflict_candidate, split_path
from sharelift.emulator.store.records import (
    SYSTEM_IDENTITY,
    Content,
    Drive,
    Identity,
    Item,
    Session,
    Site,
    Stamp,
    User,
    Version,
)
from sharelift.emulator.store.sessions import UploadSessions
from sharelift.emulator.store.signing import Signer
from sharelift.emulator.store.tenant import DEFAULT_USERS, Tenant, UserSpec, list_id_of
from sharelift.emulator.store.versions import Versions
from sharelift.errors import EmulatorError

__all__ = [
    "DEFAULT_USERS",
    "SYSTEM_IDENTITY",
    "CommitHook",
    "Content",
    "Drive",
    "DriveError",
    "Identity",
    "Item",
    "ProvisioningError",
    "Session",
    "Site",
    "Stamp",
    "Store",
    "UnknownUserError",
    "UnlicensedUserError",
    "User",
    "UserSpec",
    "Version",
    "check_name",
    "conflict_candidate",
    "list_id_of",
    "name_exists",
    "not_found",
    "split_path",
]


class Store:
    """The tenant model: the role objects over one database. Use `Store.open(settings)`."""

    def __init__(self, settings: EmulatorSettings, db: Database) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.db = db
        self.changes = ChangeLog(db)
        self.versions = Versions(db)
        self.items = Items(db, self.changes, self.versions)
        self.tenant = Tenant(db, settings, self.items)
        self.folders = Folders(db, self.items, self.changes)
        self.files = Files(
            db, self.data_dir, self.items, self.versions, self.changes, self.tenant.drive
        )
        self.edits = Edits(db, self.items, self.versions, self.changes)
        self.sessions = UploadSessions(
            db, settings, self.data_dir, self.items, self.versions, self.files
        )
        self.signer = Signer(db)

    @classmethod
    def open(cls, settings: EmulatorSettings) -> Store:
        """Create `settings.data_dir` (and its database) or reopen it, forgetting what a stopped
        emulator left behind (staged bodies, expired upload sessions).

        Raises EmulatorError when the folder or its database cannot be used."""
        data_dir = Path(settings.data_dir)
        try:
            for sub in ("content", "tmp", "sessions"):
                (data_dir / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmulatorError(
                f"cannot use {data_dir} as the emulator's data folder: {exc}"
            ) from exc
        store = cls(settings, Database.open(data_dir / "emulator.db"))
        for leftover in store.files.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
        store.sessions.drop_expired()
        return store

    def close(self) -> None:
        self.db.close()
