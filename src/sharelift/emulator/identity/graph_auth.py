"""`GraphAuthMiddleware`: every `/v1.0/` request needs a valid Microsoft Graph access token.

Graph answers a missing or refused token with 401 InvalidAuthenticationToken and a
WWW-Authenticate challenge naming the authority (https://learn.microsoft.com/graph/resolve-auth-errors).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sharelift.emulator.asgi import (
    BATCH_EXTENSION,
    bearer_token,
    drain,
    send_graph_error,
    with_principal,
)
from sharelift.emulator.identity.errors import TokenError
from sharelift.emulator.identity.provider import Identity
from sharelift.emulator.identity.tenant import GRAPH_APP_ID


class GraphAuthMiddleware:
    """Pure ASGI: checks the token of every `/v1.0/` request.

    Sets `scope["state"]["principal"]`. A $batch inner request carries its principal in
    `scope["extensions"][BATCH_EXTENSION]` and is accepted without a token. Other paths pass.
    """

    def __init__(self, app: ASGIApp, identity: Identity) -> None:
        self.app = app
        self.identity = identity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1.0/"):
            await self.app(scope, receive, send)
            return
        batch = (scope.get("extensions") or {}).get(BATCH_EXTENSION)
        if batch is not None:
            await self.app(with_principal(scope, batch["principal"]), receive, send)
            return
        token = bearer_token(scope)
        if token is None:
            await self._refuse(scope, receive, send, "Access token is empty.")
            return
        try:
            principal = self.identity.principal(token, self.identity.tenant.graph_audiences())
        except TokenError as exc:
            await self._refuse(scope, receive, send, exc.message)
            return
        await self.app(with_principal(scope, principal), receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        await drain(receive)
        challenge = (
            f'Bearer realm="", authorization_uri="{self.identity.authority}/oauth2/authorize", '
            f'client_id="{GRAPH_APP_ID}"'
        )
        await send_graph_error(
            scope,
            send,
            401,
            "InvalidAuthenticationToken",
            message,
            [(b"www-authenticate", challenge.encode())],
        )
