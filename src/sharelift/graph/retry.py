"""The one retry decision for every Graph call (like rclone's `shouldRetry`).

`should_retry` looks at what came back (a status, or the transport error when nothing came) and
says whether to give up, wait for the tenant's throttle window, or back off alone. The pacer
(`graph/pacer.py`) decides how long; `GraphClient` asks here, then asks the pacer.
"""

from __future__ import annotations

import enum

import httpx

from sharelift.network import is_certificate_error

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class Retry(enum.Enum):
    """What to do after a failed exchange."""

    NO = "no"  # give up: raise the error
    THROTTLED = "throttled"  # wait for the tenant's throttle window, then retry
    BACKOFF = "backoff"  # wait a jittered exponential delay, for this request only, then retry


def should_retry(
    status: int | None,
    error: BaseException | None,
    *,
    idempotent: bool,
    retry_after: bool = True,
) -> Retry:
    """The one retry decision for every Graph call.

    - 429, and 503 with a Retry-After (SharePoint's "server too busy"): throttling. The request
      was not processed, so it is retried whatever its method, once the tenant's throttle
      window has closed.
    - 503 without a Retry-After (`retry_after=False`): the service named no delay, so it is no
      throttling signal for the tenant: this request alone backs off and is retried, whatever
      its method (a 503 was not processed).
    - 500, 502, 504, 509: retried with backoff, but only when repeating the request is harmless
      (`idempotent`): the server may have acted before failing.
    - A connection that was never made (refused, connect timeout, no pooled connection): always
      retried. One that broke after the request went out (reset, read timeout, protocol error):
      only when `idempotent`. A TLS certificate failure is never retried.
    - Everything else (400, 401, 403, 404, 409, 412, 413, 416, 507, ...) cannot succeed by
      repeating it and is not retried.

    https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online
    """
    if error is not None:
        if is_certificate_error(error):
            return Retry.NO
        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return Retry.BACKOFF
        if isinstance(error, httpx.ProxyError):
            return Retry.BACKOFF
        if isinstance(
            error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
        ):
            return Retry.BACKOFF if idempotent else Retry.NO
        return Retry.NO
    if status == 429 or (status == 503 and retry_after):
        return Retry.THROTTLED
    if status == 503:
        return Retry.BACKOFF
    if status in (500, 502, 504, 509):
        return Retry.BACKOFF if idempotent else Retry.NO
    return Retry.NO
