"""Who may read the dashboard, and the headers every answer carries.

- **Reading only.** GET and HEAD; any other method is refused (405): nothing here writes.
- **On this machine** (bound to a loopback address, the default): a request must name this
  machine in its Host header, so that a web page elsewhere cannot read the dashboard through a
  name that resolves to 127.0.0.1 (DNS rebinding).
- **Beyond this machine**: a token is required. The first visit brings it in the address
  (`/?token=...`, as printed at start) or the form of the page that asks for it; the answer
  sets it as a cookie (HttpOnly, SameSite=Strict) and sends the browser to the same page without
  it, so the token stays out of the history and of any Referer. Scripts may send
  `Authorization: Bearer TOKEN`. Tokens are compared in constant time.
- **Headers**: a Content-Security-Policy that allows only the server's own script, styles and
  event stream (no inline script or style, no frame), no Referer, no sniffing, no caching.
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharelift.dashboard.pages import token_page

COOKIE = "sharelift_dashboard"
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
]


def same_token(given: str, token: str) -> bool:
    """True when `given` is the token (in constant time)."""
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port (`[::1]:8765` -> `[::1]`)."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """ASGI middleware in front of the dashboard (see the module docstring). `token` None:
    the server listens on a loopback address and asks for none."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", POLICY.encode()))
                headers += [h for h in HEADERS if h[0] not in names]
                message = {**message, "headers": headers}
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer that refuses this request, or None to let it through."""
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("the dashboard only reads\n", 405, {"Allow": "GET, HEAD"})
        headers = Headers(scope=scope)
        if self.token is None:
            if host_name(headers.get("host", "")).lower() not in LOCAL_NAMES:
                return PlainTextResponse("this dashboard answers on this machine only\n", 403)
            return None
        cookie = SimpleCookie(headers.get("cookie", ""))
        if COOKIE in cookie and same_token(cookie[COOKIE].value, self.token):
            return None
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and same_token(bearer[7:].strip(), self.token):
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = next((v for k, v in query if k == "token"), None)
        if given is not None and same_token(given, self.token):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            answer = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), 303)
            answer.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
            return answer
        if scope["path"] in ("/", ""):
            return HTMLResponse(token_page(), 401)
        return PlainTextResponse("a token is needed (see the dashboard's start-up line)\n", 401)
