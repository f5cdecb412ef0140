"""SharePoint REST on the tenant's admin host, where Graph has no equivalent.

Only OneDrive pre-provisioning for now: `CreatePersonalSiteEnqueueBulk` on
`https://{tenant}-admin.sharepoint.com` queues the creation of personal sites for up to 200
users per call ("Pre-provision OneDrive for users in your organization",
https://learn.microsoft.com/sharepoint/pre-provision-accounts). The call returns at once; the
sites appear minutes (or, for large batches, hours) later, and unknown or unlicensed users are
silently skipped by SharePoint, so callers poll Graph afterwards.

The admin host wants an app-only token whose audience is the admin host; SharePoint refuses
app-only tokens obtained with a client secret, so real tenants need certificate credentials.
The requests go through a `GraphClient` bound to the admin origin: the same TLS, proxy, pacing,
retry and redaction rules as Graph, and the token is only ever sent to that origin.
"""

from __future__ import annotations

from collections.abc import Sequence

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


__all__ = ["MAX_ENQUEUE", "GraphError", "enqueue_personal_sites"]
