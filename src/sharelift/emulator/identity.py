"""The tenant's identity provider: the OAuth 2.0 / OpenID Connect endpoints MSAL talks to.

It follows the Microsoft identity platform v2.0 endpoints closely enough that MSAL's real flows
run unchanged against it:

- OpenID configuration and JWKS
  (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc),
- instance discovery (`/common/discovery/instance`, only called when a client asks for it; MSAL
  must otherwise be told `instance_discovery=False`, since 127.0.0.1 is not a Microsoft host),
- the token endpoint: client credentials with a secret or a certificate assertion
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow and
  ".../certificate-credentials"), device code
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code), refresh tokens.

Access tokens are RS256 JWTs signed by a key kept in the data directory (its `kid` is in the
JWKS). `GraphAuthMiddleware` checks them on every `/v1.0/` request and attaches the caller's
`Principal` to `request.state.principal`.

State that survives restarts lives in `identity.json` (tenant id, app registration, admin key;
0600) and `signing-key.pem` (0600). Device-code grants live in memory only. Refresh tokens are
signed JWTs, so they stay valid across restarts without being stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharelift.emulator.certs import CertPaths, write_private
from sharelift.emulator.settings import EmulatorSettings
from sharelift.errors import EmulatorError

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
"""Microsoft Graph's well-known application id; tokens may carry it as `aud`."""
SHAREPOINT_APP_ID = "00000003-0000-0ff1-ce00-000000000000"

_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_APP_ROLES = {
    GRAPH_RESOURCE: ["Files.ReadWrite.All", "Sites.FullControl.All", "User.Read.All"],
}
_SHAREPOINT_ROLES = ["Sites.FullControl.All", "User.ReadWrite.All"]
_USER_SCOPES = {
    GRAPH_RESOURCE: "Files.ReadWrite.All Sites.ReadWrite.All User.Read",
}
_SHAREPOINT_USER_SCOPES = "AllSites.FullControl"
_REFRESH_LIFETIME_S = 90 * 24 * 3600  # Entra ID refresh tokens: 90 days
_CLOCK_SKEW_S = 300  # Entra ID tolerates five minutes of clock skew on assertions


# --- persistent registration ---------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """The tenant and its one registered app, as persisted in identity.json."""

    tenant_id: str
    client_id: str
    client_secret: str
    admin_key: str
    signing_kid: str


def load_or_create_registration(data_dir: Path) -> tuple[Registration, rsa.RSAPrivateKey]:
    """Read identity.json and signing-key.pem from `data_dir`, creating them on first start.

    Raises EmulatorError naming the file when an existing one is unreadable.
    """
    reg_path, key_path = data_dir / "identity.json", data_dir / "signing-key.pem"
    if reg_path.exists() and key_path.exists():
        try:
            raw = json.loads(reg_path.read_text("utf-8"))
            reg = Registration(**{k: str(raw[k]) for k in Registration.__dataclass_fields__})
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EmulatorError(f"{reg_path}: unreadable emulator identity ({exc})") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise EmulatorError(f"{key_path}: not an RSA key")
        return reg, key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    reg = Registration(
        tenant_id=str(uuid.uuid4()),
        client_id=str(uuid.uuid4()),
        # Entra ID secrets are 40 characters of a URL-safe alphabet with a `~`; ours look alike.
        client_secret=secrets.token_urlsafe(30)[:40],
        admin_key=secrets.token_urlsafe(24),
        signing_kid=secrets.token_hex(8),
    )
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(reg_path, json.dumps(reg.__dict__, indent=2).encode())
    return reg, key


# --- principals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is calling: an app (app-only token) or a user (delegated token)."""

    kind: str
    """"app" or "user"."""
    upn: str | None
    app_id: str
    tenant_id: str
    display_name: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class UserInfo:
    """What identity needs to know about a user of the tenant."""

    upn: str
    object_id: str
    display_name: str


UserLookup = Callable[[str], UserInfo | None]
"""Finds a user by UPN (case-insensitive); None when there is no such user."""


class TokenError(Exception):
    """An access token was refused; `message` is safe to show (it never contains the token)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OAuthError(Exception):
    """An error answered by the token endpoints in Entra ID's shape."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{code}")
        self.status, self.error, self.code, self.description = status, error, code, description


@dataclass
class _DeviceGrant:
    device_code: str
    user_code: str
    client_id: str
    scopes: list[str]
    expires_at: float
    upn: str | None = None
    declined: bool = False
    last_poll: float = 0.0


@dataclass
class _VerifiedCache:
    """Verified access tokens -> their claims, so a hot token is not re-verified per request."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    limit: int = 4096

    def get(self, token: str) -> dict[str, Any] | None:
        return self.entries.get(token)

    def put(self, token: str, claims: dict[str, Any]) -> None:
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[token] = claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_int(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class Identity:
    """The tenant's identity provider: registration, token issuing and verification.

    `base_url` (scheme://host:port, no trailing slash) is set by the server once the port is
    known; every issuer and endpoint URL is derived from it.
    """

    def __init__(
        self,
        settings: EmulatorSettings,
        certs: CertPaths,
        registration: Registration,
        signing_key: rsa.RSAPrivateKey,
        users: UserLookup,
    ) -> None:
        self.settings = settings
        self.registration = registration
        self.base_url = f"https://{settings.host}:{settings.port}"
        self._key = signing_key
        self._public = signing_key.public_key()
        self._users = users
        app_cert = x509.load_pem_x509_certificate(certs.app_cert.read_bytes())
        app_public = app_cert.public_key()
        if not isinstance(app_public, rsa.RSAPublicKey):
            raise EmulatorError(f"{certs.app_cert}: the app certificate must hold an RSA key")
        self._app_public = app_public
        sha1 = app_cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by definition
        self._app_x5t = {_b64url(sha1), _b64url(app_cert.fingerprint(hashes.SHA256()))}
        self._devices: dict[str, _DeviceGrant] = {}
        self._lock = threading.Lock()
        self._verified = _VerifiedCache()

    # -- names -------------------------------------------------------------------------------

    @property
    def tenant_id(self) -> str:
        return self.registration.tenant_id

    @property
    def domain(self) -> str:
        return f"{self.settings.tenant}.onmicrosoft.com"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def sharepoint_resources(self) -> dict[str, str]:
        """The SharePoint resources (audiences) of this tenant, by role: root, my, admin."""
        t = self.settings.tenant
        return {
            "root": f"https://{t}.sharepoint.com",
            "my": f"https://{t}-my.sharepoint.com",
            "admin": f"https://{t}-admin.sharepoint.com",
        }

    def tenant_aliases(self) -> set[str]:
        """Tenant segments accepted in URLs: the id, the domains (the initial *.onmicrosoft.com
        one and the users' {tenant}.com), and the multi-tenant names."""
        return {
            self.tenant_id,
            self.domain,
            f"{self.settings.tenant}.com",
            "organizations",
            "common",
        }

    def knows_tenant(self, segment: str) -> bool:
        return segment.lower() in {a.lower() for a in self.tenant_aliases()}

    def find_user(self, upn: str) -> UserInfo | None:
        """The tenant's user with this UPN (case-insensitive), or None."""
        return self._users(upn)

    def openid_configuration(self) -> dict[str, Any]:
        base = self.authority
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": f"{self.base_url}/{self.tenant_id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "tid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "sharelift.emulator",
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self._public.public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.registration.signing_kid,
                    "n": _b64url_int(numbers.n),
                    "e": _b64url_int(numbers.e),
                    "issuer": self.issuer,
                }
            ]
        }

    # -- issuing -----------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any]) -> str:
        headers = {"kid": self.registration.signing_kid, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    def issue_access_token(
        self,
        *,
        audience: str,
        user: UserInfo | None = None,
        lifetime_s: float | None = None,
        tenant_id: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
    ) -> str:
        """An access token for `audience`: app-only when `user` is None, else delegated.

        The keyword overrides (tenant, issuer, lifetime) exist so tests can forge the tokens
        Graph must refuse; the token endpoint never passes them.
        """
        now = int(time.time())
        life = self.settings.token_lifetime_s if lifetime_s is None else lifetime_s
        tid = tenant_id or self.tenant_id
        cid = client_id or self.registration.client_id
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer or f"{self.base_url}/{tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": int(now + life),
            "tid": tid,
            "appid": cid,
            "azp": cid,
            "app_displayname": "sharelift",
            "ver": "2.0",
            "uti": secrets.token_urlsafe(16),
        }
        is_graph = audience in (GRAPH_RESOURCE, GRAPH_APP_ID)
        if user is None:
            claims |= {
                "idtyp": "app",
                "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{cid}")),
                "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{cid}")),
                "roles": _APP_ROLES[GRAPH_RESOURCE] if is_graph else _SHAREPOINT_ROLES,
            }
        else:
            claims |= {
                "idtyp": "user",
                "oid": user.object_id,
                "sub": user.object_id,
                "upn": user.upn,
                "unique_name": user.upn,
                "name": user.display_name,
                "scp": _USER_SCOPES[GRAPH_RESOURCE] if is_graph else _SHAREPOINT_USER_SCOPES,
            }
        return self._sign(claims)

    def _id_token(self, user: UserInfo, client_id: str, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "sub": user.object_id,
            "oid": user.object_id,
            "tid": self.tenant_id,
            "preferred_username": user.upn,
            "name": user.display_name,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def _refresh_token(self, user: UserInfo, client_id: str) -> str:
        now = int(time.time())
        return self._sign(
            {
                "typ": "refresh",
                "iss": self.issuer,
                "aud": client_id,
                "sub": user.object_id,
                "upn": user.upn,
                "iat": now,
                "exp": now + _REFRESH_LIFETIME_S,
                "jti": secrets.token_urlsafe(12),
            }
        )

    # -- verifying ---------------------------------------------------------------------------

    def verify_access_token(self, token: str, audiences: set[str]) -> dict[str, Any]:
        """The claims of `token` if it is ours, unexpired, for this tenant and one of `audiences`.

        Raises TokenError with a message in Graph's words otherwise.
        """
        claims = self._verified.get(token)
        if claims is None:
            try:
                header = jwt.get_unverified_header(token)
            except jwt.PyJWTError as exc:
                raise TokenError("IDX14100: JWT is not well formed.") from exc
            if header.get("kid") != self.registration.signing_kid:
                raise TokenError("Access token validation failure. Invalid signing key.")
            try:
                claims = jwt.decode(
                    token,
                    self._public,
                    algorithms=["RS256"],
                    options={"verify_aud": False, "verify_exp": False, "verify_iss": False},
                )
            except jwt.PyJWTError as exc:
                raise TokenError("Access token validation failure. Invalid signature.") from exc
            if claims.get("typ") == "refresh":
                raise TokenError("Access token validation failure. Not an access token.")
            self._verified.put(token, claims)
        if float(claims.get("exp", 0)) < time.time():
            raise TokenError("Lifetime validation failed, the token is expired.")
        if claims.get("tid") != self.tenant_id or claims.get("iss") != self.issuer:
            raise TokenError("Access token validation failure. Invalid issuer.")
        if claims.get("aud") not in audiences:
            raise TokenError("Invalid audience.")
        return claims

    def principal_from(self, claims: Mapping[str, Any]) -> Principal:
        """The Principal a verified token stands for."""
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        if claims.get("idtyp") == "user" or "scp" in claims:
            return Principal(
                kind="user",
                upn=str(claims.get("upn")),
                app_id=app_id,
                tenant_id=str(claims["tid"]),
                display_name=str(claims.get("name") or claims.get("upn")),
                scopes=tuple(str(claims.get("scp", "")).split()),
            )
        return Principal(
            kind="app",
            upn=None,
            app_id=app_id,
            tenant_id=str(claims["tid"]),
            display_name=str(claims.get("app_displayname") or app_id),
            roles=tuple(claims.get("roles") or ()),
        )

    # -- managed identity (Azure App Service's local token endpoint) --------------------------

    @property
    def managed_identity(self) -> dict[str, str]:
        """The App Service managed-identity endpoint a workload finds in IDENTITY_ENDPOINT and
        IDENTITY_HEADER, with the client ids of the tenant's system-assigned identity and of one
        user-assigned identity.
        https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference
        """
        header = hashlib.sha256(f"{self.registration.admin_key}:msi".encode()).hexdigest()[:32]
        return {
            "endpoint": f"{self.base_url}/msi/token",
            "header": header,
            "client_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mi:{self.tenant_id}")),
            "user_assigned_client_id": str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"mi-user:{self.tenant_id}")
            ),
        }

    def managed_identity_token(
        self, *, header: str | None, resource: str, client_id: str | None
    ) -> dict[str, Any]:
        """An app-only token for the managed identity, in App Service's response shape.

        Raises OAuthError (rendered as App Service's `{"statusCode", "message"}`)."""
        mi = self.managed_identity
        if not header or not hmac.compare_digest(header, mi["header"]):
            raise OAuthError(401, "unauthorized", 0, "X-IDENTITY-HEADER is missing or wrong")
        if client_id and client_id != mi["user_assigned_client_id"]:
            raise OAuthError(400, "invalid_request", 0, f"No identity with client_id {client_id}")
        audience = self._resource_of([resource])
        lifetime = self.settings.token_lifetime_s
        token = self.issue_access_token(
            audience=audience, lifetime_s=lifetime, client_id=client_id or mi["client_id"]
        )
        return {
            "access_token": token,
            "expires_on": str(int(time.time() + lifetime)),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id or mi["client_id"],
        }

    def graph_audiences(self) -> set[str]:
        return {GRAPH_RESOURCE, GRAPH_APP_ID, GRAPH_RESOURCE + "/"}

    # -- token endpoint ----------------------------------------------------------------------

    def _resource_of(self, scopes: list[str]) -> str:
        """The single resource the scopes are for (Entra ID issues a token for one resource)."""
        resources: set[str] = set()
        for s in scopes:
            if s in _RESERVED_SCOPES:
                continue
            if "://" in s:
                parts = urlsplit(s)
                resources.add(f"{parts.scheme}://{parts.netloc}".lower())
            elif s.startswith(GRAPH_APP_ID):
                resources.add(GRAPH_RESOURCE)
            else:  # a bare scope such as Files.ReadWrite.All means Microsoft Graph
                resources.add(GRAPH_RESOURCE)
        if not resources:
            resources.add(GRAPH_RESOURCE)
        if len(resources) > 1:
            raise OAuthError(
                400,
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains "
                "more than one resource.",
            )
        (resource,) = resources
        known = {GRAPH_RESOURCE, *self.sharepoint_resources.values()}
        if resource not in known:
            raise OAuthError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.settings.tenant}.",
            )
        return resource

    def _check_client_id(self, client_id: str) -> None:
        if client_id != self.registration.client_id:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.settings.tenant}'.",
            )

    def _authenticate_client(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, required: bool
    ) -> str:
        """Check the client's credential; return its client id."""
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
        if basic is not None:
            client_id, secret = basic
        assertion = form.get("client_assertion")
        if not client_id and assertion:
            try:
                client_id = str(jwt.decode(assertion, options={"verify_signature": False})["iss"])
            except (jwt.PyJWTError, KeyError):
                client_id = ""
        if not client_id:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        self._check_client_id(client_id)
        if secret is not None:
            if not hmac.compare_digest(secret.encode(), self.registration.client_secret.encode()):
                raise OAuthError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added "
                    f"to app '{client_id}'.",
                )
        elif assertion is not None:
            self._verify_assertion(form, assertion, client_id)
        elif required:
            raise OAuthError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        return client_id

    def _verify_assertion(self, form: Mapping[str, str], assertion: str, client_id: str) -> None:
        # https://learn.microsoft.com/entra/identity-platform/certificate-credentials
        if (
            form.get("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            raise OAuthError(
                400,
                "invalid_request",
                50027,
                "client_assertion_type must be "
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise OAuthError(401, "invalid_client", 50027, "Invalid JWT token.") from exc
        x5t = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        if x5t not in self._app_x5t:
            raise OAuthError(
                401,
                "invalid_client",
                700027,
                f"The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of "
                f"key used by client: '{x5t}']",
            )
        audiences = [
            f"{self.base_url}/{alias}/oauth2/v2.0/token" for alias in self.tenant_aliases()
        ] + [f"{self.base_url}/{alias}/oauth2/token" for alias in self.tenant_aliases()]
        try:
            claims = jwt.decode(
                assertion,
                self._app_public,
                algorithms=["RS256", "PS256"],
                audience=audiences,
                leeway=_CLOCK_SKEW_S,
                options={"require": ["aud", "iss", "sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise OAuthError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise OAuthError(
                401,
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion audience.",
            ) from exc
        except jwt.PyJWTError as exc:
            raise OAuthError(
                401, "invalid_client", 700027, "Client assertion failed signature validation."
            ) from exc
        if claims["iss"] != client_id or claims["sub"] != client_id:
            raise OAuthError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """Answer a token request (already parsed); raises OAuthError."""
        grant = form.get("grant_type", "")
        scopes = form.get("scope", "").split()
        if grant == "client_credentials":
            client_id = self._authenticate_client(form, basic, required=True)
            resource_scopes = [s for s in scopes if s not in _RESERVED_SCOPES]
            if not resource_scopes or not all(s.endswith("/.default") for s in resource_scopes):
                raise OAuthError(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                    "credential flows must have a scope value with /.default suffixed to the "
                    "resource identifier (application ID URI).",
                )
            resource = self._resource_of(resource_scopes)
            return self._token_response(resource, None, client_id, scopes, form)
        if grant in ("urn:ietf:params:oauth:grant-type:device_code", "device_code"):
            client_id = self._authenticate_client(form, basic, required=False)
            user, dev_scopes = self._redeem_device_code(form.get("device_code", ""), client_id)
            return self._token_response(
                self._resource_of(dev_scopes), user, client_id, dev_scopes, form
            )
        if grant == "refresh_token":
            client_id = self._authenticate_client(form, basic, required=False)
            user = self._redeem_refresh_token(form.get("refresh_token", ""), client_id)
            # Entra ID answers a refresh with a new refresh token too (they rotate), whatever the
            # scopes of this request: offline_access was granted with the first one.
            granted = scopes if "offline_access" in scopes else [*scopes, "offline_access"]
            return self._token_response(self._resource_of(scopes), user, client_id, granted, form)
        raise OAuthError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def _token_response(
        self,
        resource: str,
        user: UserInfo | None,
        client_id: str,
        scopes: list[str],
        form: Mapping[str, str],
    ) -> dict[str, Any]:
        life = self.settings.token_lifetime_s
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": self.issue_access_token(audience=resource, user=user),
        }
        if user is not None:
            granted = [s for s in scopes if s not in ("offline_access",)]
            body["scope"] = " ".join(granted)
            if "offline_access" in scopes:
                body["refresh_token"] = self._refresh_token(user, client_id)
            if "openid" in scopes:
                body["id_token"] = self._id_token(user, client_id, form.get("nonce"))
            if form.get("client_info") == "1":
                info = {"uid": user.object_id, "utid": self.tenant_id}
                body["client_info"] = _b64url(json.dumps(info).encode())
        return body

    def _redeem_refresh_token(self, token: str, client_id: str) -> UserInfo:
        try:
            claims = jwt.decode(
                token, self._public, algorithms=["RS256"], audience=client_id, issuer=self.issuer
            )
        except jwt.PyJWTError as exc:
            raise OAuthError(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid (refresh token).",
            ) from exc
        if claims.get("typ") != "refresh":
            raise OAuthError(400, "invalid_grant", 9002313, "Not a refresh token.")
        user = self._users(str(claims.get("upn")))
        if user is None:
            raise OAuthError(
                400, "invalid_grant", 50034, "The user account does not exist in this directory."
            )
        return user

    # -- device code -------------------------------------------------------------------------

    def start_device_flow(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Answer the device authorization request; raises OAuthError."""
        client_id = form.get("client_id", "")
        if not client_id:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        self._check_client_id(client_id)
        scopes = form.get("scope", "").split()
        self._resource_of(scopes)
        alphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"
        user_code = "".join(secrets.choice(alphabet) for _ in range(9))
        device_code = secrets.token_urlsafe(48)
        lifetime = self.settings.device_code_lifetime_s
        with self._lock:
            now = time.time()
            for code in [c for c, g in self._devices.items() if g.expires_at < now - 600]:
                del self._devices[code]
            self._devices[device_code] = _DeviceGrant(
                device_code, user_code, client_id, scopes, now + lifetime
            )
        uri = f"{self.base_url}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": int(lifetime),
            "interval": self.settings.device_code_interval_s,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the "
            f"code {user_code} to authenticate.",
        }

    def approve_device_code(self, user_code: str, upn: str) -> None:
        """Sign `upn` in for the pending grant `user_code`; raises KeyError / LookupError."""
        user = self._users(upn)
        if user is None:
            raise LookupError(f"no such user: {upn}")
        with self._lock:
            grant = self._grant_by_user_code(user_code)
            grant.upn = user.upn

    def decline_device_code(self, user_code: str) -> None:
        """The user refuses the grant `user_code`; raises KeyError."""
        with self._lock:
            self._grant_by_user_code(user_code).declined = True

    def _grant_by_user_code(self, user_code: str) -> _DeviceGrant:
        wanted = user_code.replace("-", "").upper()
        for grant in self._devices.values():
            if grant.user_code == wanted and grant.expires_at >= time.time():
                return grant
        raise KeyError(user_code)

    def _redeem_device_code(self, device_code: str, client_id: str) -> tuple[UserInfo, list[str]]:
        # Error names from the device code flow page (they differ from RFC 8628's access_denied):
        # https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code#expected-errors
        with self._lock:
            grant = self._devices.get(device_code)
            if grant is None or grant.client_id != client_id:
                # Unknown, already redeemed, or another app's code.
                raise OAuthError(
                    400,
                    "bad_verification_code",
                    70019,
                    "The device_code sent to the /token endpoint wasn't recognized.",
                )
            if grant.expires_at < time.time():
                del self._devices[device_code]
                raise OAuthError(
                    400,
                    "expired_token",
                    70020,
                    "The provided value for the input parameter "
                    "'device_code' is not valid. This device code has expired.",
                )
            if grant.declined:
                del self._devices[device_code]
                raise OAuthError(
                    400, "authorization_declined", 70000, "The user denied the authorization."
                )
            if grant.upn is None:
                grant.last_poll = time.time()
                raise OAuthError(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            del self._devices[device_code]  # a device code is redeemed once
            upn, scopes = grant.upn, grant.scopes
        user = self._users(upn)
        if user is None:
            raise OAuthError(
                400, "invalid_grant", 50034, "The user account does not exist in this directory."
            )
        return user, scopes


# --- HTTP ----------------------------------------------------------------------------------------


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    """`exc` in Entra ID's JSON error shape."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = _utc_stamp()
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
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
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
    identity, tenant = _identity(request), request.path_params["tenant"]
    if not identity.knows_tenant(tenant):
        return _unknown_tenant(tenant)
    return JSONResponse(identity.openid_configuration())


async def _jwks(request: Request) -> Response:
    return JSONResponse(_identity(request).jwks())


async def _instance_discovery(request: Request) -> Response:
    identity = _identity(request)
    host = urlsplit(identity.base_url).netloc
    return JSONResponse(
        {
            "tenant_discovery_endpoint": f"{identity.authority}/v2.0/.well-known/"
            "openid-configuration",
            "api-version": "1.1",
            "metadata": [
                {"preferred_network": host, "preferred_cache": host, "aliases": [host]},
            ],
        }
    )


async def _token(request: Request) -> Response:
    identity, tenant = _identity(request), request.path_params["tenant"]
    if not identity.knows_tenant(tenant):
        return _unknown_tenant(tenant)
    try:
        body = identity.token(await _form(request), _basic_auth(request))
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def _msi_token(request: Request) -> Response:
    identity = _identity(request)
    if request.query_params.get("api-version") != "2019-08-01":
        return JSONResponse(
            {"statusCode": 400, "message": "api-version 2019-08-01 is required"}, status_code=400
        )
    try:
        body = identity.managed_identity_token(
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
    identity, tenant = _identity(request), request.path_params["tenant"]
    if not identity.knows_tenant(tenant):
        return _unknown_tenant(tenant)
    try:
        return JSONResponse(identity.start_device_flow(await _form(request)))
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


# --- Graph authentication middleware -------------------------------------------------------------

BATCH_EXTENSION = "sharelift.batch"
"""scope["extensions"] key under which $batch passes an inner request's principal."""


def graph_error_body(
    code: str,
    message: str,
    request_id: str,
    client_request_id: str,
    inner_code: str | None = None,
) -> bytes:
    """A Graph error body, `{"error": {"code", "message", "innerError": {...}}}`."""
    inner: dict[str, str] = {"code": inner_code} if inner_code else {}
    inner |= {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    return json.dumps({"error": {"code": code, "message": message, "innerError": inner}}).encode()


def header_value(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case) in an ASGI scope."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def send_graph_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    inner_code: str | None = None,
) -> None:
    """Answer the request in `scope` with a Graph error."""
    request_id = str(uuid.uuid4())
    client_request_id = header_value(scope, b"client-request-id") or request_id
    body = graph_error_body(code, message, request_id, client_request_id, inner_code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"request-id", request_id.encode()),
        (b"client-request-id", client_request_id.encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    """Read and drop the request body so the connection can be reused."""
    while True:
        message: Message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


def bearer_token(scope: Scope) -> str | None:
    """The bearer token in the Authorization header, or None."""
    header = header_value(scope, b"authorization")
    if header is None or header[:7].lower() != "bearer ":
        return None
    token = header[7:].strip()
    return token or None


def with_principal(scope: Scope, principal: Principal | Any) -> Scope:
    """A copy of `scope` whose state carries `principal` (the server's state dict is shared)."""
    return {**scope, "state": {**(scope.get("state") or {}), "principal": principal}}


class GraphAuthMiddleware:
    """Pure ASGI: every `/v1.0/` request needs a valid Graph access token.

    Sets `scope["state"]["principal"]`. A $batch inner request carries its principal in
    `scope["extensions"]["sharelift.batch"]` and is accepted without a token. Other paths pass.
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
            claims = self.identity.verify_access_token(token, self.identity.graph_audiences())
        except TokenError as exc:
            await self._refuse(scope, receive, send, exc.message)
            return
        principal = self.identity.principal_from(claims)
        await self.app(with_principal(scope, principal), receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        await _drain(receive)
        # Graph answers 401 with a WWW-Authenticate challenge naming the authority:
        # https://learn.microsoft.com/graph/resolve-auth-errors
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
