"""The tenant's directory: users, sites and drives, the sample tenant, OneDrive provisioning.

Sites live on `{tenant}.sharepoint.com` (the root site, team sites) and personal sites on
`{tenant}-my.sharepoint.com/personal/…`; every site has document libraries (drives), each with
a root folder. A user's OneDrive is the one library of their personal site, created when the
user is provisioned.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store.database import Database
from sharelift.emulator.store.errors import UnknownUserError, UnlicensedUserError
from sharelift.emulator.store.items import Items
from sharelift.emulator.store.names import personal_path, split_path
from sharelift.emulator.store.records import (
    DRIVE_COLS,
    SYSTEM_IDENTITY,
    Drive,
    Site,
    Stamp,
    User,
    drive_from_row,
    new_item_id,
)

# ruff: noqa: S608 — queries are built from constant column lists only; values are bound.

TIB = 1024**4
DEFAULT_QUOTA = TIB
"""OneDrive for Business starts at 1 TB; team sites get their own quota (here the same)."""


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


def _drive_id(site_guid: uuid.UUID, web_guid: uuid.UUID, list_guid: uuid.UUID) -> str:
    # Graph's SharePoint drive ids are "b!" + base64url(site guid, web guid, list guid).
    raw = site_guid.bytes_le + web_guid.bytes_le + list_guid.bytes_le
    return "b!" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def list_id_of(drive_id: str) -> str | None:
    """The list (library) GUID inside a SharePoint drive id, lower case; None for another form."""
    if not drive_id.startswith("b!"):
        return None
    raw = drive_id[2:]
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        return None
    return str(uuid.UUID(bytes_le=data[32:48])) if len(data) == 48 else None


class Tenant:
    """Users, sites and drives. Thread-safe."""

    def __init__(self, db: Database, settings: EmulatorSettings, items: Items) -> None:
        self._db = db
        self._items = items
        self.name = settings.tenant

    @property
    def hostname(self) -> str:
        """The host of the root site and the team sites."""
        return f"{self.name}.sharepoint.com"

    @property
    def my_hostname(self) -> str:
        """The host of the personal sites (OneDrives)."""
        return f"{self.name}-my.sharepoint.com"

    # -- creating ----------------------------------------------------------------------------

    def seed(self, users: Sequence[UserSpec] = DEFAULT_USERS) -> None:
        """Create the sites (once) and the users; existing users are left as they are, so calling
        this again on every start is harmless. OneDrives are provisioned for `onedrive` users."""
        with self._db.lock:
            if self._db.meta("seeded") is None:
                self._seed_sites()
                self._db.set_meta("seeded", "1")
            for spec in users:
                upn = spec.upn if "@" in spec.upn else f"{spec.upn}@{self.name}.com"
                if self.user(upn) is None:
                    with self._db.tx() as db:
                        db.execute(
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
        with self._db.tx() as db:
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
        root_id = new_item_id()
        now = time.time()
        owner = (
            {"user": {"displayName": owner_upn, "email": owner_upn}}
            if owner_upn
            else SYSTEM_IDENTITY
        )
        with self._db.tx() as db:
            db.execute(
                f"INSERT INTO drives ({DRIVE_COLS}) VALUES (?,?,?,?,?,?,?,?,0,0,?,?)",
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
            self._items.insert(db, root_id, drive_id, None, "root", True, Stamp(owner), now)
        return drive_id

    def provision_onedrive(self, upn: str) -> str:
        """Create the user's personal site and OneDrive unless it exists; return the drive id.

        Raises UnknownUserError or UnlicensedUserError."""
        with self._db.lock:
            user = self.user(upn)
            if user is None:
                raise UnknownUserError(f"no user {upn!r} in tenant {self.name!r}")
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
            with self._db.tx() as db:
                db.execute("UPDATE users SET drive_id = ? WHERE id = ?", (drive_id, user.id))
            return drive_id

    # -- reading -----------------------------------------------------------------------------

    def users(self) -> list[User]:
        rows = self._db.all(
            "SELECT id, upn, display_name, licensed, drive_id FROM users ORDER BY upn_lower"
        )
        return [User(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def user(self, upn_or_id: str) -> User | None:
        """The user with this UPN or object id (case-insensitive), or None."""
        r = self._db.one(
            "SELECT id, upn, display_name, licensed, drive_id FROM users "
            "WHERE upn_lower = ? OR id = ?",
            (upn_or_id.lower(), upn_or_id.lower()),
        )
        return None if r is None else User(r[0], r[1], r[2], bool(r[3]), r[4])

    def _sites(self, where: str, args: Sequence[Any]) -> list[Site]:
        with self._db.lock:
            rows = self._db.all(
                "SELECT id, web_url, hostname, path, display_name, name, created FROM sites "
                f"WHERE {where} ORDER BY created",
                args,
            )
            result = []
            for r in rows:
                drives = self._db.all(
                    "SELECT id FROM drives WHERE site_id = ? ORDER BY is_default DESC, created",
                    (r[0],),
                )
                result.append(
                    Site(r[0], r[1], r[2], r[3], r[4], r[5], r[6], [d[0] for d in drives])
                )
        return result

    def sites(self) -> list[Site]:
        """Every site: the root site, team sites, personal sites."""
        return self._sites("1", ())

    def site(self, site_id: str) -> Site | None:
        found = self._sites("lower(id) = ?", (site_id.lower(),))
        return found[0] if found else None

    def site_by_path(self, hostname: str, path: str) -> Site | None:
        """The site at a server-relative path ("/", "/sites/Team") of a host, any case."""
        path = "/" + "/".join(split_path(path))
        found = self._sites("hostname = ? AND path_lower = ?", (hostname.lower(), path.lower()))
        return found[0] if found else None

    def drive(self, drive_id: str) -> Drive | None:
        r = self._db.one(f"SELECT {DRIVE_COLS} FROM drives WHERE id = ?", (drive_id,))
        return None if r is None else drive_from_row(r)

    def drives(self, site_id: str) -> list[Drive]:
        """A site's drives, the default library first."""
        rows = self._db.all(
            f"SELECT {DRIVE_COLS} FROM drives WHERE site_id = ? ORDER BY is_default DESC, created",
            (site_id,),
        )
        return [drive_from_row(r) for r in rows]

    def drives_summary(self) -> list[dict[str, Any]]:
        """One entry per drive for emulator.json: id, name, driveType, webUrl, owner."""
        rows = self._db.all(
            "SELECT d.id, d.name, d.drive_type, d.web_url, d.owner_upn, s.web_url "
            "FROM drives d JOIN sites s ON s.id = d.site_id ORDER BY d.created"
        )
        return [
            {"id": r[0], "name": r[1], "driveType": r[2], "webUrl": r[3], "owner": r[4] or r[5]}
            for r in rows
        ]
