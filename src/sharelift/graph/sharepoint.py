"""SharePoint REST on the tenant's admin host, where Graph has no equivalent.

Only OneDrive pre-provisioning for now: `CreatePersonalSiteEnqueueBulk` on
`https://{tenant}-admin.sharepoint.com` queues the creation of personal sites for up to 200
users per call ("Pre-provision OneDrive for users in your organization",
https://learn.microsoft.com/sharepoint/pre-provision-accounts). The call returns at once; the
sites appear minutes (or, for large batches, hours) later, and unknown or unlicensed users are
silently skipped by SharePoint, so callers poll Graph afterwards.

The admin host wants an app-only token whose audience is the admin host; SharePoint refuses
app-only tokens obtained with a client secret (401 "Unsupported app only token"; "Granting
access via Entra ID App-Only", sp-dev-docs docs/solution-guidance/security-apponly-azuread.md:
"the only supported method ... is via a certificate"), so real tenants need certificate
credentials, or a delegated sign-in of a SharePoint administrator. `refuse_secret_sign_in`
says so before a command starts; the token's `appidacr` claim (`1`: a secret) tells it for a
token acquired elsewhere.
The requests go through a `GraphClient` bound to the admin origin: the same TLS, proxy, pacing,
retry and redaction rules as Graph, and the token is only ever sent to that origin.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from sharelift.errors import OptionError
from sharelift.graph.client import GraphClient
from sharelift.graph.errors import GraphError, Unauthorized

MAX_ENQUEUE = 200
_ENQUEUE = "_api/SP.UserProfiles.ProfileLoader.GetProfileLoader/CreatePersonalSiteEnqueueBulk"


async def enqueue_personal_sites(admin: GraphClient, upns: Sequence[str]) -> None:
    """Queue OneDrive creation for `upns` (1 to 200) with one call to the admin host.

    Repeating it is harmless (existing sites are left alone), so it is retried like a GET.
    Raises GraphError (Unauthorized with a hint about certificates) when SharePoint refuses.
    """
    if not 1 <= len(upns) <= MAX_ENQUEUE:
        raise ValueError(f"CreatePersonalSiteEnqueueBulk takes 1 to {MAX_ENQUEUE} users")
    try:
        await admin.request(
            "POST",
            _ENQUEUE,
            json={"emailIDs": list(upns)},
            headers={"Accept": "application/json;odata=verbose"},
            retry_safe=True,
        )
    except Unauthorized as exc:
        raise Unauthorized(
            f"the SharePoint admin host refused the app's token ({exc.message}); SharePoint "
            "accepts app-only tokens from certificate credentials only (--auth certificate)",
            status=exc.status,
            code=exc.code,
            method=exc.method,
            url=exc.url,
            request_id=exc.request_id,
            client_request_id=exc.client_request_id,
        ) from None


def _claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (only to tell how it was got); {} when unreadable."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def app_only_from_secret(method: str, access_token: str = "") -> bool:
    """True when the sign-in `method` (with `access_token` for the token method) gives
    app-only tokens got with a client secret: SharePoint REST refuses those. A token says
    how it was got in `appidacr` (v1) or `azpacr` (v2): "1" is a secret; app-only tokens
    carry `roles` and no `scp`."""
    if method == "secret":
        return True
    if method != "token" or not access_token:
        return False
    claims = _claims(access_token.strip().removeprefix("Bearer ").strip())
    how = str(claims.get("appidacr", claims.get("azpacr", "")))
    return how == "1" and "scp" not in claims


def refuse_secret_sign_in(command: str, method: str, access_token: str = "") -> None:
    """Raise OptionError (on `auth`) before `command` starts when its sign-in gives app-only
    tokens from a client secret, which the SharePoint REST calls it makes refuse."""
    if app_only_from_secret(method, access_token):
        raise OptionError(
            "auth",
            f"{command} calls SharePoint REST, which refuses app-only tokens got with a client "
            "secret; sign in with certificate (or device_code, as a SharePoint administrator)",
        )


__all__ = [
    "MAX_ENQUEUE",
    "GraphError",
    "app_only_from_secret",
    "enqueue_personal_sites",
    "refuse_secret_sign_in",
]
