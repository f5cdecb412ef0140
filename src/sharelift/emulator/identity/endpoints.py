"""The identity platform's HTTP endpoints that MSAL and people talk to.

    GET  /common/discovery/instance                       instance discovery (only when asked:
                                                          MSAL is told instance_discovery=False,
                                                          since 127.0.0.1 is not a Microsoft host)
    GET  /{tenant}/v2.0/.well-known/openid-configuration  OpenID Connect discovery
    GET  /{tenant}/discovery/v2.0/keys                    the JWKS
    POST /{tenant}/oauth2/v2.0/token                      every grant (token_endpoint.py)
    POST /{tenant}/oauth2/v2.0/devicecode                 start a device-code sign-in
    GET|POST /devicelogin                                 the sign-in page for a device code
    GET  /msi/token                                       managed identity (App Service shape)

They read `request.app.state.identity`. Errors come in Entra ID's JSON shape.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sharelift.emulator.identity.errors import OAuthError
from sharelift.emulator.identity.provider import Identity

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    """`exc` in Entra ID's JSON error shape."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return JSONResponse(
        {
            "error": exc.error,
            "error_description": f"AADSTS{exc.code}: {exc.description} Trace ID: {trace} "
            f"Correlation ID: {correlation} Timestamp: {stamp}",
            "error_codes": [exc.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={exc.code}",
        },
        status_code=exc.status,
        headers=_NO_STORE,
    )


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = raw.partition(":")
    return client_id, secret


def _identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


def _unknown_tenant(tenant: str) -> JSONResponse:
    return oauth_error_response(
        OAuthError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    )


async def _openid_configuration(request: Request) -> Response:
    tenant, segment = _identity(request).tenant, request.path_params["tenant"]
    if not tenant.knows_tenant(segment):
        return _unknown_tenant(segment)
    return JSONResponse(tenant.openid_configuration())


async def _jwks(request: Request) -> Response:
    return JSONResponse(_identity(request).tokens.jwks())


async def _instance_discovery(request: Request) -> Response:
    tenant = _identity(request).tenant
    host = urlsplit(tenant.base_url).netloc
    return JSONResponse(
        {
            "tenant_discovery_endpoint": f"{tenant.authority}/v2.0/.well-known/"
            "openid-configuration",
            "api-version": "1.1",
            "metadata": [
                {"preferred_network": host, "preferred_cache": host, "aliases": [host]},
            ],
        }
    )


async def _token(request: Request) -> Response:
    identity, segment = _identity(request), request.path_params["tenant"]
    if not identity.tenant.knows_tenant(segment):
        return _unknown_tenant(segment)
    try:
        body = identity.token_endpoint.token(await _form(request), _basic_auth(request))
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(body, headers=_NO_STORE)


async def _msi_token(request: Request) -> Response:
    identity = _identity(request)
    if request.query_params.get("api-version") != "2019-08-01":
        return JSONResponse(
            {"statusCode": 400, "message": "api-version 2019-08-01 is required"}, status_code=400
        )
    try:
        body = identity.managed_identity.token(
            header=request.headers.get("x-identity-header"),
            resource=request.query_params.get("resource", ""),
            client_id=request.query_params.get("client_id"),
        )
    except OAuthError as exc:
        return JSONResponse(
            {"statusCode": exc.status, "message": exc.description}, status_code=exc.status
        )
    return JSONResponse(body)


async def _devicecode(request: Request) -> Response:
    identity, segment = _identity(request), request.path_params["tenant"]
    if not identity.tenant.knows_tenant(segment):
        return _unknown_tenant(segment)
    try:
        return JSONResponse(identity.device_codes.start(await _form(request)))
    except OAuthError as exc:
        return oauth_error_response(exc)


_DEVICE_PAGE = """<!doctype html><html><head><title>sharelift emulator sign-in</title></head>
<body><h1>Sign in to the sharelift emulator</h1>{message}
<form method="post"><p><label>Code <input name="user_code"></label></p>
<p><label>User (UPN) <input name="upn"></label></p><p><button>Sign in</button></p></form>
</body></html>"""


async def _devicelogin(request: Request) -> Response:
    """A sign-in page for people: enter the code and a user's UPN (no password)."""
    message = ""
    if request.method == "POST":
        form = await _form(request)
        try:
            _identity(request).approve_device_code(form.get("user_code", ""), form.get("upn", ""))
            message = "<p>Signed in. You may close this window.</p>"
        except (KeyError, LookupError):
            message = "<p>Unknown or expired code, or unknown user.</p>"
    return HTMLResponse(_DEVICE_PAGE.format(message=message))


def routes() -> list[BaseRoute]:
    """The identity endpoints; they read `request.app.state.identity`."""
    return [
        Route("/common/discovery/instance", _instance_discovery, methods=["GET"]),
        Route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            _openid_configuration,
            methods=["GET"],
        ),
        Route("/{tenant}/discovery/v2.0/keys", _jwks, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", _token, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/devicecode", _devicecode, methods=["POST"]),
        Route("/devicelogin", _devicelogin, methods=["GET", "POST"]),
        Route("/msi/token", _msi_token, methods=["GET"]),
    ]
