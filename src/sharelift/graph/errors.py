"""The errors Microsoft Graph calls raise, decoded from Graph's error bodies.

    GraphError                      a Graph call failed (sharelift.errors.ShareliftError)
    ├── TransportError              no HTTP response: connection refused or reset, timeout, TLS
    ├── BadRequest                  400, and 413 (the request can never succeed as sent)
    ├── Unauthorized                401 that survived one token refresh
    ├── Forbidden                   403: access denied, or a blocked app
    ├── NotFound                    404: no such item, drive, site; or an expired upload session
    ├── Conflict                    409
    │   └── NameAlreadyExists       409 nameAlreadyExists: the name is taken in that folder
    ├── Gone                        410: a delta token too old to use (resync from scratch)
    ├── PreconditionFailed          412: an If-Match eTag no longer matches
    ├── InvalidRange                416: a fragment that overlaps or skips what the session holds
    ├── FailedDependency            424: a $batch request whose dependsOn failed
    ├── Throttled                   429, or 503 with Retry-After, after the retries ran out
    ├── QuotaExceeded               507: the drive is full
    ├── ServerError                 any other 5xx after the retries ran out
    └── MalformedResponse           a 2xx whose body lacks what the operation needs

Every error carries the HTTP status (0 for TransportError), Graph's `error.code` and
`innerError.code`, the message, the method and a redacted URL (never its query string: an
upload URL's query is a credential), and both `request-id` and `client-request-id` so that a
failure can be matched with Microsoft's logs. Tokens never appear in an error: the request
headers are not kept.
"""

from __future__ import annotations

from typing import Any

from sharelift.errors import EXIT_AUTH, ShareliftError


class GraphError(ShareliftError):
    """A Graph call failed; see the module docstring for the subclasses.

    The message is one line: status, codes, Graph's message, method and redacted URL, ids.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        inner_code: str = "",
        method: str = "",
        url: str = "",
        request_id: str = "",
        client_request_id: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.inner_code = inner_code
        self.method = method
        self.url = url
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after = retry_after
        super().__init__(self._line())

    def _line(self) -> str:
        codes = "/".join(c for c in (self.code, self.inner_code) if c)
        head = " ".join(
            part for part in (f"HTTP {self.status}" if self.status else "", codes) if part
        )
        parts = [f"{head}: {self.message}" if head else self.message]
        target = " ".join(part for part in (self.method, self.url) if part)
        if target:
            parts.append(f"({target})")
        ids = []
        if self.request_id:
            ids.append(f"request-id {self.request_id}")
        if self.client_request_id:
            ids.append(f"client-request-id {self.client_request_id}")
        if ids:
            parts.append("[" + ", ".join(ids) + "]")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"inner_code={self.inner_code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r}, client_request_id={self.client_request_id!r})"
        )


class TransportError(GraphError):
    """No HTTP response arrived: connection refused or reset, timeout, TLS failure."""


class BadRequest(GraphError):
    """400 or 413: the request is malformed or too large and will never succeed as sent."""


class Unauthorized(GraphError):
    """401 even after fetching a fresh token."""

    exit_code = EXIT_AUTH


class Forbidden(GraphError):
    """403: the identity may not do this, or the app is blocked."""

    exit_code = EXIT_AUTH


class NotFound(GraphError):
    """404: the item, drive, site or upload session does not exist (any more)."""


class Conflict(GraphError):
    """409: the request conflicts with the current state of the target."""


class NameAlreadyExists(Conflict):
    """409 nameAlreadyExists: an item of that name already exists in the folder."""


class Gone(GraphError):
    """410: a delta token that has expired; the caller must enumerate again without it."""


class PreconditionFailed(GraphError):
    """412: the item changed since the eTag passed in If-Match was read."""


class InvalidRange(GraphError):
    """416: a fragment overlapping or skipping the bytes the upload session already holds."""


class FailedDependency(GraphError):
    """424: a $batch request not run because a request it depends on failed."""


class Throttled(GraphError):
    """429 (or 503) still returned after every retry the pacer allowed."""


class QuotaExceeded(GraphError):
    """507: the drive has no space left."""


class ServerError(GraphError):
    """A 5xx other than 503/507 still returned after the retries ran out."""


class MalformedResponse(GraphError):
    """Graph answered 2xx with a body that lacks what the operation needs."""


_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    412: PreconditionFailed,
    413: BadRequest,
    416: InvalidRange,
    424: FailedDependency,
    429: Throttled,
    503: Throttled,
    507: QuotaExceeded,
}


def error_class(status: int, code: str) -> type[GraphError]:
    """The exception class for an HTTP status and Graph error code."""
    if status == 409 and code == "nameAlreadyExists":
        return NameAlreadyExists
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return GraphError


def error_from_body(
    status: int,
    body: Any,
    *,
    method: str = "",
    url: str = "",
    request_id: str = "",
    client_request_id: str = "",
    reason: str = "",
    retry_after: float | None = None,
) -> GraphError:
    """Decode `{"error": {"code", "message", "innerError": {...}}}` into a typed GraphError.

    Tolerates a missing or non-JSON body (then the message is the HTTP reason phrase) and
    Graph's two spellings `innerError` / `innererror`. Ids from the body fill in ids the
    headers lacked.
    """
    code = inner_code = message = ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = _text(error.get("code"))
        message = _text(error.get("message"))
        inner = error.get("innerError", error.get("innererror"))
        if isinstance(inner, dict):
            inner_code = _text(inner.get("code"))
            request_id = request_id or _text(inner.get("request-id"))
            client_request_id = client_request_id or _text(inner.get("client-request-id"))
    cls = error_class(status, code)
    return cls(
        message or reason or "no error message",
        status=status,
        code=code,
        inner_code=inner_code,
        method=method,
        url=url,
        request_id=request_id,
        client_request_id=client_request_id,
        retry_after=retry_after,
    )


def _text(value: Any) -> str:
    if isinstance(value, dict):  # SharePoint REST: {"lang": "en-US", "value": "..."}
        value = value.get("value")
    return value if isinstance(value, str) else ""
