"""SharePoint REST on the admin host, where Graph has no equivalent: OneDrive pre-provisioning.

`POST /_api/SP.UserProfiles.ProfileLoader.GetProfileLoader/CreatePersonalSiteEnqueueBulk` with
`{"emailIDs": [...]}` queues the creation of personal sites, at most 200 addresses per call
("Pre-provision OneDrive for users in your organization",
https://learn.microsoft.com/sharepoint/pre-provision-accounts). The call answers at once; each
OneDrive appears after `settings.provisioning_delay_s`. Unknown and unlicensed users are accepted
by the call and silently never get a OneDrive, as in SharePoint Online.

The caller needs an app-only access token whose audience is the tenant's admin host
(`https://{tenant}-admin.sharepoint.com`), got with a certificate: SharePoint Online refuses
app-only tokens got with a client secret (`appidacr` "1") with 401 "Unsupported app only token."
(sp-dev-docs `docs/solution-guidance/security-apponly-azuread.md`, FAQ: "all other options are
blocked by SharePoint Online"), unless the tenant's `app_only_secret_for_sharepoint` setting
allows them. Errors use SharePoint REST's JSON shape: with
`odata=verbose`, `{"error": {"code", "message": {"lang", "value"}}}`; otherwise
`{"odata.error": {...}}` with the same fields.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sharelift.emulator.asgi import bearer_token
from sharelift.emulator.identity import SHAREPOINT_APP_ID, Identity, Principal, TokenError
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import ProvisioningError, Store

MAX_BULK = 200
_log = logging.getLogger(__name__)


def sp_error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    """An error in SharePoint REST's shape, verbose or not as the Accept header asks."""
    payload = {"code": code, "message": {"lang": "en-US", "value": message}}
    verbose = "odata=verbose" in request.headers.get("accept", "")
    return JSONResponse({"error" if verbose else "odata.error": payload}, status_code=status)


class Provisioner:
    """Creates OneDrives after the configured delay, on the server's event loop."""

    def __init__(self, store: Store, settings: EmulatorSettings) -> None:
        self.store = store
        self.settings = settings
        self._pending: set[asyncio.TimerHandle] = set()

    def enqueue(self, upns: list[str]) -> None:
        delay = self.settings.provisioning_delay_s
        if delay <= 0:
            self._provision(upns, None)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._provision(upns, handle)

        handle = loop.call_later(delay, fire)
        self._pending.add(handle)

    def _provision(self, upns: list[str], handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            self._pending.discard(handle)
        for upn in upns:
            try:
                self.store.tenant.provision_onedrive(upn)
            except ProvisioningError:
                continue  # SharePoint Online silently skips unknown and unlicensed users
            except Exception:  # the store may already be closed when the server stops
                _log.exception("provisioning %s failed", upn)

    def cancel(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()


def _unauthorized(identity: Identity, description: str) -> Response:
    """SharePoint's 401 with its Bearer challenge."""
    challenge = (
        f'Bearer realm="{identity.tenant_id}",client_id="{SHAREPOINT_APP_ID}",'
        f'trusted_issuers="{SHAREPOINT_APP_ID}@*",'
        f'authorization_uri="{identity.authority}/oauth2/authorize"'
    )
    return JSONResponse(
        {"error_description": description},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


ACCESS_DENIED = "-2147024891, System.UnauthorizedAccessException"
ACCESS_DENIED_MESSAGE = (
    "Access denied. You do not have permission to perform this action or access this resource."
)
APPIDACR_SECRET = "1"  # noqa: S105 — a claim value, not a password
"""`appidacr` of a token got with a client secret (Entra ID v1 tokens: 0 public client,
1 client secret, 2 certificate)."""


def authenticate(request: Request, audience: str) -> Principal | Response:
    """The caller's principal for a SharePoint REST call to the host of `audience`,
    or the 401 to answer (no token, an invalid one, or an app-only one got with a secret)."""
    identity: Identity = request.app.state.identity
    settings: EmulatorSettings = request.app.state.settings
    token = bearer_token(request.scope)
    if token is None:
        return _unauthorized(identity, "Unsupported security token.")
    try:
        principal = identity.principal(token, {audience})
    except TokenError as exc:
        return _unauthorized(identity, f"Invalid JWT token. {exc.message}")
    if (
        principal.kind == "app"
        and principal.appidacr == APPIDACR_SECRET
        and not settings.app_only_secret_for_sharepoint
    ):
        return _unauthorized(identity, "Unsupported app only token.")
    return principal


async def _create_personal_site_enqueue_bulk(request: Request) -> Response:
    identity: Identity = request.app.state.identity
    provisioner: Provisioner = request.app.state.provisioner
    authenticated = authenticate(request, identity.sharepoint_resources["admin"])
    if isinstance(authenticated, Response):
        return authenticated
    if authenticated.kind != "app":
        return sp_error(
            request,
            403,
            ACCESS_DENIED,
            ACCESS_DENIED_MESSAGE,
        )
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    emails = body.get("emailIDs") if isinstance(body, dict) else None
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        return sp_error(
            request,
            400,
            "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
            "The parameter emailIDs does not exist in method CreatePersonalSiteEnqueueBulk.",
        )
    if len(emails) > MAX_BULK:
        return sp_error(
            request,
            400,
            "-2147024809, System.ArgumentException",
            f"The number of email addresses ({len(emails)}) exceeds the maximum of {MAX_BULK} "
            "per request.",
        )
    provisioner.enqueue(list(emails))
    if "odata=verbose" in request.headers.get("accept", ""):
        return JSONResponse({"d": {"CreatePersonalSiteEnqueueBulk": None}})
    return JSONResponse({"odata.null": True})


def routes() -> list[BaseRoute]:
    """SharePoint REST routes; they read app.state.identity and app.state.provisioner."""
    return [
        Route(
            "/_api/SP.UserProfiles.ProfileLoader.GetProfileLoader/CreatePersonalSiteEnqueueBulk",
            _create_personal_site_enqueue_bulk,
            methods=["POST"],
        ),
    ]
