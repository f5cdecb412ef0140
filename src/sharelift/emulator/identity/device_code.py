"""The device code flow (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code).

A client asks for a code, shows the user the message, and polls the token endpoint; the user
signs in on `/devicelogin` (or a test approves through the admin endpoint). Grants live in
memory only: a restart forgets pending sign-ins, as a lost session would.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sharelift.emulator.identity.clients import ClientAuthenticator
from sharelift.emulator.identity.errors import OAuthError, missing_client_id, unknown_user
from sharelift.emulator.identity.tenant import IdentityTenant
from sharelift.emulator.identity.tokens import UserInfo, UserLookup
from sharelift.emulator.settings import EmulatorSettings

_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"


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


class DeviceCodes:
    """Pending device-code grants. Thread-safe."""

    def __init__(
        self,
        settings: EmulatorSettings,
        tenant: IdentityTenant,
        clients: ClientAuthenticator,
        users: UserLookup,
    ) -> None:
        self._settings = settings
        self._tenant = tenant
        self._clients = clients
        self._users = users
        self._grants: dict[str, _DeviceGrant] = {}
        self._lock = threading.Lock()

    def start(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Answer the device authorization request; raises OAuthError."""
        client_id = form.get("client_id", "")
        if not client_id:
            raise missing_client_id()
        self._clients.check_client_id(client_id)
        scopes = form.get("scope", "").split()
        self._tenant.resource_of(scopes)
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        device_code = secrets.token_urlsafe(48)
        lifetime = self._settings.device_code_lifetime_s
        with self._lock:
            now = time.time()
            for code in [c for c, g in self._grants.items() if g.expires_at < now - 600]:
                del self._grants[code]
            self._grants[device_code] = _DeviceGrant(
                device_code, user_code, client_id, scopes, now + lifetime
            )
        uri = f"{self._tenant.base_url}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": int(lifetime),
            "interval": self._settings.device_code_interval_s,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the "
            f"code {user_code} to authenticate.",
        }

    def approve(self, user_code: str, upn: str) -> None:
        """Sign `upn` in for the pending grant `user_code`; raises KeyError / LookupError."""
        user = self._users(upn)
        if user is None:
            raise LookupError(f"no such user: {upn}")
        with self._lock:
            grant = self._grant_by_user_code(user_code)
            grant.upn = user.upn

    def decline(self, user_code: str) -> None:
        """The user refuses the grant `user_code`; raises KeyError."""
        with self._lock:
            self._grant_by_user_code(user_code).declined = True

    def _grant_by_user_code(self, user_code: str) -> _DeviceGrant:
        wanted = user_code.replace("-", "").upper()
        for grant in self._grants.values():
            if grant.user_code == wanted and grant.expires_at >= time.time():
                return grant
        raise KeyError(user_code)

    def redeem(self, device_code: str, client_id: str) -> tuple[UserInfo, list[str]]:
        """The user and scopes of an approved grant, which is then gone; raises OAuthError
        while it is pending, and when it is unknown, expired or declined."""
        # Error names from the device code flow page (they differ from RFC 8628's access_denied):
        # https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code#expected-errors
        with self._lock:
            grant = self._grants.get(device_code)
            if grant is None or grant.client_id != client_id:
                # Unknown, already redeemed, or another app's code.
                raise OAuthError(
                    400,
                    "bad_verification_code",
                    70019,
                    "The device_code sent to the /token endpoint wasn't recognized.",
                )
            if grant.expires_at < time.time():
                del self._grants[device_code]
                raise OAuthError(
                    400,
                    "expired_token",
                    70020,
                    "The provided value for the input parameter "
                    "'device_code' is not valid. This device code has expired.",
                )
            if grant.declined:
                del self._grants[device_code]
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
            del self._grants[device_code]  # a device code is redeemed once
            upn, scopes = grant.upn, grant.scopes
        user = self._users(upn)
        if user is None:
            raise unknown_user()
        return user, scopes
