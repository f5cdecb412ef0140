"""Tokens: signing access, ID and refresh tokens, publishing the key, verifying access tokens.

Every token is an RS256 JWT signed by the tenant's key (its `kid` is in the JWKS). Access tokens
carry what Graph and SharePoint read: `aud`, `tid`, `appid`, and `roles` (app-only) or `scp`
and `upn` (delegated). Refresh tokens are signed JWTs too, so they stay valid across restarts
without being stored.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from sharelift.emulator.identity.errors import OAuthError, TokenError
from sharelift.emulator.identity.registration import b64url
from sharelift.emulator.identity.tenant import GRAPH_APP_ID, GRAPH_RESOURCE, IdentityTenant
from sharelift.emulator.settings import EmulatorSettings

_APP_ROLES = ["Files.ReadWrite.All", "Sites.FullControl.All", "User.Read.All"]
_SHAREPOINT_ROLES = ["Sites.FullControl.All", "User.ReadWrite.All"]
_USER_SCOPES = "Files.ReadWrite.All Sites.ReadWrite.All User.Read"
_SHAREPOINT_USER_SCOPES = "AllSites.FullControl"
_REFRESH_LIFETIME_S = 90 * 24 * 3600  # Entra ID refresh tokens: 90 days


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
    appidacr: str = ""
    """How the app authenticated: "0" public client, "1" client secret, "2" certificate."""


@dataclass(frozen=True)
class UserInfo:
    """What identity needs to know about a user of the tenant."""

    upn: str
    object_id: str
    display_name: str


UserLookup = Callable[[str], UserInfo | None]
"""Finds a user by UPN (case-insensitive); None when there is no such user."""


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


def _b64url_int(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Tokens:
    """Issues and verifies the tenant's tokens. Thread-safe."""

    def __init__(
        self,
        settings: EmulatorSettings,
        tenant: IdentityTenant,
        client_id: str,
        kid: str,
        key: rsa.RSAPrivateKey,
    ) -> None:
        self._settings = settings
        self._tenant = tenant
        self._client_id = client_id
        self._kid = kid
        self._key = key
        self._public = key.public_key()
        self._verified = _VerifiedCache()

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set that verifies every token issued here."""
        numbers = self._public.public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self._kid,
                    "n": _b64url_int(numbers.n),
                    "e": _b64url_int(numbers.e),
                    "issuer": self._tenant.issuer,
                }
            ]
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        headers = {"kid": self._kid, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    # -- issuing -----------------------------------------------------------------------------

    def access_token(
        self,
        *,
        audience: str,
        user: UserInfo | None = None,
        lifetime_s: float | None = None,
        tenant_id: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
        appidacr: str = "2",
    ) -> str:
        """An access token for `audience`: app-only when `user` is None, else delegated.

        `appidacr` says how the client authenticated, as Entra ID's v1 tokens do ("0" public
        client, "1" client secret, "2" certificate or managed identity); SharePoint REST refuses
        app-only tokens got with a secret.

        The keyword overrides (tenant, issuer, lifetime) exist so tests can forge the tokens
        Graph must refuse; the token endpoint never passes them.
        """
        now = int(time.time())
        life = self._settings.token_lifetime_s if lifetime_s is None else lifetime_s
        tid = tenant_id or self._tenant.tenant_id
        cid = client_id or self._client_id
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer or f"{self._tenant.base_url}/{tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": int(now + life),
            "tid": tid,
            "appid": cid,
            "azp": cid,
            "app_displayname": "sharelift",
            "appidacr": appidacr,
            "ver": "2.0",
            "uti": secrets.token_urlsafe(16),
        }
        is_graph = audience in (GRAPH_RESOURCE, GRAPH_APP_ID)
        if user is None:
            claims |= {
                "idtyp": "app",
                "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{cid}")),
                "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{cid}")),
                "roles": _APP_ROLES if is_graph else _SHAREPOINT_ROLES,
            }
        else:
            claims |= {
                "idtyp": "user",
                "oid": user.object_id,
                "sub": user.object_id,
                "upn": user.upn,
                "unique_name": user.upn,
                "name": user.display_name,
                "scp": _USER_SCOPES if is_graph else _SHAREPOINT_USER_SCOPES,
            }
        return self._sign(claims)

    def id_token(self, user: UserInfo, client_id: str, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self._tenant.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "sub": user.object_id,
            "oid": user.object_id,
            "tid": self._tenant.tenant_id,
            "preferred_username": user.upn,
            "name": user.display_name,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def refresh_token(self, user: UserInfo, client_id: str) -> str:
        now = int(time.time())
        return self._sign(
            {
                "typ": "refresh",
                "iss": self._tenant.issuer,
                "aud": client_id,
                "sub": user.object_id,
                "upn": user.upn,
                "iat": now,
                "exp": now + _REFRESH_LIFETIME_S,
                "jti": secrets.token_urlsafe(12),
            }
        )

    # -- verifying ---------------------------------------------------------------------------

    def refresh_token_upn(self, token: str, client_id: str) -> str:
        """The UPN a refresh token issued to `client_id` stands for; raises OAuthError."""
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=client_id,
                issuer=self._tenant.issuer,
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
        return str(claims.get("upn"))

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
            if header.get("kid") != self._kid:
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
        if claims.get("tid") != self._tenant.tenant_id or claims.get("iss") != self._tenant.issuer:
            raise TokenError("Access token validation failure. Invalid issuer.")
        if claims.get("aud") not in audiences:
            raise TokenError("Invalid audience.")
        return claims


def principal_from(claims: Mapping[str, Any]) -> Principal:
    """The Principal a verified access token stands for."""
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
        appidacr=str(claims.get("appidacr", "")),
    )
