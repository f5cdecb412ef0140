"""OneDrive pre-provisioning: make sure users' OneDrives exist before migrating into them.

    UPNs ─► check each through Graph ($batch of GET /users/{upn}/drive)
              ├─ has a OneDrive ............................. ready (nothing asked)
              ├─ unknown user / no licence .................. failed
              └─ missing ─► CreatePersonalSiteEnqueueBulk on the admin host, ≤ 200 per call
                              └─► poll Graph until each OneDrive exists ─► ready
                                   (still missing at the deadline ─► pending)

Re-running is safe: users who have a OneDrive are only checked, and asking SharePoint again for
one that is still being created changes nothing. `Provisioner.wait_for(upn)` lets a migration
start each job the moment its own OneDrive exists (`sharelift migrate --jobs F --provision`).
All waiting between polls goes through the tenant's pacer (DESIGN invariant 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sharelift.auth import TokenProvider
from sharelift.clouds import Cloud
from sharelift.errors import ConfigError
from sharelift.graph.client import MAX_BATCH, BatchRequest, GraphClient
from sharelift.graph.pacer import Pacer
from sharelift.graph.sharepoint import MAX_ENQUEUE, enqueue_personal_sites
from sharelift.jobs import Job
from sharelift.network import Timeouts
from sharelift.target import onedrive_personal_path

READY, PENDING, FAILED = "ready", "pending", "failed"


@dataclass
class UserOutcome:
    """Where one user's OneDrive stands. `requested`: sharelift asked SharePoint to create it."""

    upn: str
    status: str = PENDING
    message: str = ""
    drive_id: str = ""
    requested: bool = False


@dataclass
class ProvisionReport:
    """Every user's outcome, in the order given."""

    users: list[UserOutcome]

    def by_status(self, status: str) -> list[UserOutcome]:
        return [u for u in self.users if u.status == status]

    @property
    def exit_code(self) -> int:
        """0: all ready; 1: some failed; 75 (EX_TEMPFAIL, "try again later"): some pending."""
        if self.by_status(FAILED):
            return 1
        return 75 if self.by_status(PENDING) else 0


@dataclass(frozen=True)
class ProvisionProgress:
    """Where provisioning stands: users checked, OneDrives asked for, ready, failed, pending,
    and seconds waited since the first request (0 before any)."""

    users: int
    requested: int
    ready: int
    failed: int
    pending: int
    waited: float
    timeout: float


class Provisioner:
    """Provisions OneDrives through one Graph client (checks, polls) and the admin host.

    `timeout`: how long to poll after asking, in seconds; `poll_interval`: between polls;
    `batch_size`: users per CreatePersonalSiteEnqueueBulk call (at most 200).
    """

    def __init__(
        self,
        graph: GraphClient,
        *,
        timeout: float = 600.0,
        poll_interval: float = 15.0,
        batch_size: int = MAX_ENQUEUE,
    ) -> None:
        if not 1 <= batch_size <= MAX_ENQUEUE:
            raise ValueError(f"batch_size must be 1 to {MAX_ENQUEUE}")
        self.graph = graph
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.enqueue_calls = 0
        self._users: dict[str, UserOutcome] = {}
        self._settled: dict[str, asyncio.Event] = {}
        self._poller: asyncio.Task[None] | None = None
        self._asked_at: float | None = None

    def progress(self) -> ProvisionProgress:
        """Where provisioning stands now (what `sharelift provision` shows while it waits)."""
        users = list(self._users.values())
        waited = time.monotonic() - self._asked_at if self._asked_at is not None else 0.0
        return ProvisionProgress(
            users=len(users),
            requested=sum(u.requested for u in users),
            ready=sum(u.status == READY for u in users),
            failed=sum(u.status == FAILED for u in users),
            pending=sum(u.status == PENDING for u in users),
            waited=waited,
            timeout=self.timeout,
        )

    async def start(self, upns: Iterable[str], admin: GraphClient) -> None:
        """Check every user, ask for the missing OneDrives, and start polling for them."""
        fresh: list[str] = []
        for upn in upns:
            key = upn.strip().lower()
            if key and key not in self._users:
                self._users[key] = UserOutcome(upn.strip())
                self._settled[key] = asyncio.Event()
                fresh.append(key)
        missing = await self._check(fresh)
        missing = await self._check_licences(missing)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            await enqueue_personal_sites(admin, [self._users[k].upn for k in chunk])
            self.enqueue_calls += 1
            if self._asked_at is None:
                self._asked_at = time.monotonic()
            for key in chunk:
                self._users[key].requested = True
        if missing and self._poller is None:
            self._poller = asyncio.create_task(self._poll(self.graph.pacer.now() + self.timeout))

    async def wait_for(self, upn: str) -> UserOutcome:
        """The user's outcome once it is settled: ready, failed, or pending at the deadline."""
        key = upn.strip().lower()
        await self._settled[key].wait()
        return self._users[key]

    async def run(self, upns: Sequence[str], admin: GraphClient) -> ProvisionReport:
        """Provision `upns` and wait for all of them (see the module docstring)."""
        await self.start(upns, admin)
        keys = list(dict.fromkeys(u.strip().lower() for u in upns if u.strip()))
        return ProvisionReport([await self.wait_for(k) for k in keys])

    async def aclose(self) -> None:
        """Stop polling (the users not settled yet stay pending)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    def _settle(self, key: str, status: str, message: str = "", drive_id: str = "") -> None:
        user = self._users[key]
        user.status, user.message, user.drive_id = status, message, drive_id
        self._settled[key].set()

    async def _check(self, keys: list[str]) -> list[str]:
        """Settle users who have a OneDrive or do not exist; return the rest."""
        missing: list[str] = []
        for start in range(0, len(keys), MAX_BATCH):
            chunk = keys[start : start + MAX_BATCH]
            requests = [
                BatchRequest(str(i), "GET", f"/users/{quote(self._users[k].upn, safe='@')}/drive")
                for i, k in enumerate(chunk)
            ]
            for key, answer in zip(chunk, await self.graph.batch(requests), strict=True):
                body = answer.body if isinstance(answer.body, dict) else {}
                if answer.ok:
                    self._settle(key, READY, drive_id=str(body.get("id", "")))
                    continue
                error = body.get("error") if isinstance(body.get("error"), dict) else {}
                code = str(error.get("code", "")) if isinstance(error, dict) else ""
                if answer.status == 404 and code == "Request_ResourceNotFound":
                    self._settle(key, FAILED, "no such user in the tenant")
                elif answer.status == 404:
                    missing.append(key)
                else:
                    self._settle(key, FAILED, f"Graph answered {answer.status} {code}".strip())
        return missing

    async def _check_licences(self, keys: list[str]) -> list[str]:
        """Settle users without any licence as failed (SharePoint would skip them silently)."""
        left: list[str] = []
        for start in range(0, len(keys), MAX_BATCH):
            chunk = keys[start : start + MAX_BATCH]
            requests = [
                BatchRequest(
                    str(i),
                    "GET",
                    f"/users/{quote(self._users[k].upn, safe='@')}?$select=assignedLicenses",
                )
                for i, k in enumerate(chunk)
            ]
            for key, answer in zip(chunk, await self.graph.batch(requests), strict=True):
                body = answer.body if isinstance(answer.body, dict) else {}
                if answer.ok and body.get("assignedLicenses") == []:
                    self._settle(key, FAILED, "the user has no licence that includes OneDrive")
                else:
                    left.append(key)
        return left

    async def _poll(self, deadline: float) -> None:
        pacer = self.graph.pacer
        waiting = [k for k, e in self._settled.items() if not e.is_set()]
        while waiting and pacer.now() < deadline:
            await pacer.pause(min(self.poll_interval, max(0.0, deadline - pacer.now())))
            waiting = await self._check(waiting)
        for key in waiting:
            self._settle(
                key,
                PENDING,
                f"requested, not created within {self.timeout:g} s (SharePoint can take up "
                "to 24 hours); run again later",
            )


async def upns_for_personal_sites(graph: GraphClient, paths: Iterable[str]) -> dict[str, str]:
    """OneDrive server-relative paths (`/personal/megan_contoso_com`) -> the users' UPNs.

    SharePoint derives the path from the UPN (`.` and `@` become `_`), which cannot be undone
    unambiguously, so the tenant's users are listed once and matched forward.
    """
    wanted = {p.lower() for p in paths}
    found: dict[str, str] = {}
    if not wanted:
        return found
    params: dict[str, str | int] = {"$select": "userPrincipalName", "$top": 999}
    async for page in graph.pages("/users", params=params):
        for user in page.get("value") or []:
            upn = str(user.get("userPrincipalName") or "") if isinstance(user, dict) else ""
            path = onedrive_personal_path(upn) if upn else ""
            if path in wanted:
                found[path] = upn
        if len(found) == len(wanted):
            break
    return found


def read_upns(path: Path) -> list[str]:
    """UPNs from a CSV: the column named upn, UserPrincipalName or email (or the first column);
    header row optional. Raises ConfigError naming the file."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the users file ({exc})") from None
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    column = 0
    if rows and "@" not in rows[0][0]:
        names = [c.strip().lower() for c in rows[0]]
        for name in ("upn", "userprincipalname", "email", "mail"):
            if name in names:
                column = names.index(name)
                break
        rows = rows[1:]
    upns = [r[column].strip() for r in rows if len(r) > column and r[column].strip()]
    bad = [u for u in upns if "@" not in u]
    if bad:
        raise ConfigError(f"{path}: {bad[0]!r} is not a user principal name")
    return upns


__all__ = [
    "FAILED",
    "PENDING",
    "READY",
    "ProvisionProgress",
    "ProvisionReport",
    "Provisioner",
    "UserOutcome",
    "admin_client",
    "provision_for_jobs",
    "read_upns",
    "tenant_name_from",
    "upns_for_personal_sites",
]


def admin_client(
    cloud: Cloud, credential: TokenProvider, tenant_name: str, timeouts: Timeouts | None = None
) -> GraphClient:
    """A client for the SharePoint admin host of `tenant_name` (`contoso`), signed in with an
    app-only token for that host; its own pacer (SharePoint throttles it apart from Graph)."""
    scope = f"{cloud.sharepoint_admin_resource(tenant_name)}/.default"

    async def token() -> str:
        return await asyncio.to_thread(credential.token, [scope])

    return GraphClient(
        token=token,
        base_url=cloud.sharepoint_admin_url(tenant_name),
        verify=cloud.ca_file,
        timeouts=timeouts,
        pacer=Pacer(max_concurrency=2),
        connect=cloud.connect,
    )


def tenant_name_from(hosts: Iterable[str], tenant: str = "") -> str:
    """The tenant's SharePoint name (`contoso`) from SharePoint host names
    (`contoso-my.sharepoint.com`) or a `contoso.onmicrosoft.com` tenant; "" when unknown."""
    for host in hosts:
        first = host.lower().split(".", 1)[0]
        for suffix in ("-my", "-admin"):
            first = first.removesuffix(suffix)
        if first and ".sharepoint." in host.lower():
            return first
    low = tenant.lower()
    if low.endswith(".onmicrosoft.com") or low.endswith(".onmicrosoft.us"):
        return low.split(".", 1)[0]
    return ""


async def provision_for_jobs(
    graph: GraphClient,
    admin: Callable[[], GraphClient],
    jobs: Sequence[Job],
    provisioner: Provisioner,
) -> Callable[[Job], Awaitable[str | None]]:
    """Ask for the missing OneDrives of the jobs' OneDrive targets, and return the check a bulk
    run awaits before each job: None once the job's OneDrive exists (at once for other
    targets), else why the job cannot start. `admin` opens the admin-host client (only when
    there is a OneDrive target)."""
    upns = await upns_for_personal_sites(graph, {j.personal_path for j in jobs if j.personal_path})
    if upns:
        async with admin() as client:
            await provisioner.start(upns.values(), client)

    async def ready(job: Job) -> str | None:
        if not job.personal_path:
            return None
        upn = upns.get(job.personal_path)
        if upn is None:
            return f"no user of the tenant owns the OneDrive {job.personal_path}"
        outcome = await provisioner.wait_for(upn)
        if outcome.status == READY:
            return None
        return f"the OneDrive of {upn} is {outcome.status}: {outcome.message}"

    return ready
