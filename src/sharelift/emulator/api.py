"""`sharelift.emulator.Emulator`: a local Microsoft 365 tenant in this process, for scripts and
tests that migrate with sharelift (or talk to Graph themselves) without a real tenant.

    with Emulator() as tenant:                       # or: async with Emulator() as tenant:
        result = sharelift.migrate("exports", "onedrive:megan@contoso.com/Nightly",
                                   credential=tenant.credential, state=tmp / "state.db")
        assert tenant.read_file(tenant.user("megan@contoso.com").drive_id,
                                "Nightly/report.csv") == b"..."

It serves HTTPS on a free port of 127.0.0.1 (its own CA: `ca_file`), with a sample tenant (or
the users of `users_file`) whose OneDrives and team sites exist. This module is the thin public
face of `EmulatorServer`; it is client-side glue (it hands out a `sharelift.Credential`), and
the emulator's own modules import nothing from it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sharelift.clouds import EmulatorInfo, EmulatorUser

if TYPE_CHECKING:
    from sharelift.credential import Credential
    from sharelift.emulator.server import EmulatorServer

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class EmulatorDrive:
    """A document library or OneDrive of the emulated tenant."""

    id: str
    name: str
    drive_type: str
    """`business` for a OneDrive, `documentLibrary` for a site's library."""
    web_url: str
    owner: str
    """The owner's UPN (a OneDrive) or the site's URL (a library)."""


@dataclass(frozen=True)
class ManagedIdentityEndpoint:
    """The emulator's managed-identity endpoint, as Azure App Service provides one."""

    endpoint: str
    header: str
    user_assigned_client_id: str
    """The client id of the user-assigned identity it also serves."""

    @property
    def environment(self) -> dict[str, str]:
        """The variables Azure sets for a managed identity (IDENTITY_ENDPOINT, IDENTITY_HEADER),
        which MSAL reads."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.header}


class Emulator:
    """A running local tenant. Start it with `with` / `async with` (or `start()` and `stop()`).

    `data_dir`: where the tenant lives (kept, and reused by the next Emulator on it); without
    one, a temporary folder removed at `stop()`. `tenant`: its name (`contoso`: users are
    `megan@contoso.com`, sites `https://contoso.sharepoint.com/sites/...`). `users_file`: a CSV
    (upn,display_name,licensed,onedrive) or JSON list of users instead of the sample ones.
    Raises EmulatorError when it cannot start.
    """

    def __init__(
        self,
        data_dir: PathLike | None = None,
        *,
        tenant: str = "contoso",
        users_file: PathLike | None = None,
        port: int = 0,
    ) -> None:
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self._tenant = tenant
        self._users_file = Path(users_file) if users_file is not None else None
        self._port = port
        self._server: EmulatorServer | None = None
        self._temporary: Path | None = None
        self._info: EmulatorInfo | None = None
        self._credential: Credential | None = None

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Serve from a background thread; returns at once when clients may connect."""
        from sharelift.emulator.server import EmulatorServer
        from sharelift.emulator.settings import EmulatorSettings

        if self._server is not None:
            return self
        folder = self._given_dir
        if folder is None:
            folder = self._temporary = Path(tempfile.mkdtemp(prefix="sharelift-emulator-"))
        settings = EmulatorSettings(
            data_dir=folder,
            port=self._port,
            tenant=self._tenant,
            users_file=self._users_file,
            device_code_interval_s=1,  # a test waits a second for an approved device code, not 5
        )
        try:
            self._server = EmulatorServer(settings).start()
        except BaseException:
            self._remove_temporary()
            raise
        self._info = EmulatorInfo.load(folder)
        return self

    def stop(self) -> None:
        """Stop serving (about a second) and remove a temporary data folder. Idempotent."""
        if self._credential is not None:
            self._credential.close()
            self._credential = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # --- what a client needs ---------------------------------------------------------------

    @property
    def server(self) -> EmulatorServer:
        """The underlying EmulatorServer (request log, counters, device-code approval)."""
        if self._server is None:
            from sharelift.errors import EmulatorError

            raise EmulatorError("the emulator is not running: start() it first")
        return self._server

    @property
    def info(self) -> EmulatorInfo:
        """Everything emulator.json holds, typed."""
        self.server  # noqa: B018 (raises when stopped)
        assert self._info is not None
        return self._info

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def base_url(self) -> str:
        """`https://127.0.0.1:PORT`: sign-in, Graph (`/v1.0`) and SharePoint all live here."""
        return self.info.base_url

    @property
    def graph_url(self) -> str:
        return self.info.graph_url

    @property
    def authority(self) -> str:
        return self.info.authority

    @property
    def ca_file(self) -> Path:
        """The emulator's CA certificate (PEM): trust it, and only for this emulator."""
        return self.info.ca_file

    @property
    def tenant(self) -> str:
        return self.info.tenant

    @property
    def domain(self) -> str:
        """The users' domain (`contoso.com`)."""
        return self.info.domain

    @property
    def client_id(self) -> str:
        """The registered app's client id (its secret: `client_secret`)."""
        return self.info.client_id

    @property
    def client_secret(self) -> str:
        return self.info.client_secret

    @property
    def credential(self) -> Credential:
        """A ready `sharelift.Credential`: the registered app, signing in with its secret."""
        if self._credential is None:
            from sharelift.credential import Credential

            self._credential = Credential.from_secret(emulator=self.data_dir)
        return self._credential

    @property
    def managed_identity(self) -> ManagedIdentityEndpoint:
        """Where a managed identity gets its tokens (set `.environment` to use it)."""
        found = self.server.info["managed_identity"]
        return ManagedIdentityEndpoint(
            found["endpoint"], found["header"], found["user_assigned_client_id"]
        )

    @property
    def users(self) -> tuple[EmulatorUser, ...]:
        """The tenant's users as they are now (drive_id None: no OneDrive yet)."""
        return tuple(
            EmulatorUser(
                upn=u["upn"],
                id=u["id"],
                licensed=bool(u["licensed"]),
                drive_id=u["drive_id"] or None,
                display_name=u["display_name"],
            )
            for u in self.server.build_info()["users"]
        )

    def user(self, upn: str) -> EmulatorUser:
        """One user by UPN (case-insensitive); raises KeyError."""
        for user in self.users:
            if user.upn.lower() == upn.lower():
                return user
        raise KeyError(upn)

    @property
    def drives(self) -> tuple[EmulatorDrive, ...]:
        """Every OneDrive and document library as they are now."""
        return tuple(
            EmulatorDrive(d["id"], d["name"], d["driveType"], d["webUrl"], d["owner"])
            for d in self.server.build_info()["drives"]
        )

    def drive(self, web_url: str) -> EmulatorDrive:
        """One drive by its web URL (`https://contoso.sharepoint.com/sites/Team/Shared%20
        Documents`); raises KeyError."""
        for drive in self.drives:
            if drive.web_url.rstrip("/").lower() == web_url.rstrip("/").lower():
                return drive
        raise KeyError(web_url)

    def read_file(self, drive_id: str, path: str) -> bytes:
        """The content of the file at `path` (below the drive's root) through Graph, as any
        client reads it; raises KeyError when there is no such file."""
        import ssl

        import httpx

        from sharelift.graph.connect import connect_mounts_sync

        token = self.credential.token()
        trust = ssl.create_default_context(cafile=self.ca_file)
        # The 302 leads to a download URL on the drive's SharePoint host: emulator.json's
        # connect map says where that is (httpx drops the token on the way, another origin).
        mounts = connect_mounts_sync(self.info.connect, verify=trust)
        with httpx.Client(verify=trust, timeout=60, mounts=mounts) as http:
            response = http.get(
                f"{self.graph_url}/drives/{drive_id}/root:/{path.strip('/')}:/content",
                headers={"Authorization": f"Bearer {token}"},
                follow_redirects=True,
            )
        if response.status_code == 404:
            raise KeyError(path)
        response.raise_for_status()
        return response.content

    def approve_device_code(self, user_code: str, upn: str) -> None:
        """Sign `upn` in for a pending device code, as that person would in a browser; raises
        LookupError for an unknown code or user."""
        self.server.approve_device_code(user_code, upn)

    # --- faults and counters -----------------------------------------------------------------

    def set_faults(self, **faults: float | str) -> None:
        """Inject faults now: latency_ms, bandwidth_bps, ru_per_minute, error_rate, drop_rate,
        seed, replace_not_found_rate, never_answer (selectors, text) (docs/emulator.md); raises
        ValueError for an unknown name or a bad value."""
        self.server.set_faults(**faults)

    def reset_faults(self) -> None:
        """Every fault off, throttling windows emptied."""
        self.server.reset_faults()

    def stats(self) -> dict[str, Any]:
        """Counters of the requests served so far (requests, bytes, by status and route)."""
        return self.server.stats()

    def __repr__(self) -> str:
        state = f"{self._info.base_url}" if self._server and self._info else "stopped"
        return f"Emulator({self._tenant}, {state})"
