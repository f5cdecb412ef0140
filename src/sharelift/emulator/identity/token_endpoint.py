"""The token endpoint's grants: client credentials (secret or certificate), device code, refresh.

Client credentials: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
(the scope must be `{resource}/.default`). Device code: `device_code.py`. Refresh tokens rotate:
every refresh answers a new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sharelift.emulator.identity.clients import ClientAuthenticator
from sharelift.emulator.identity.device_code import DeviceCodes
from sharelift.emulator.identity.errors import OAuthError, unknown_user
from sharelift.emulator.identity.registration import b64url
from sharelift.emulator.identity.tenant import RESERVED_SCOPES, IdentityTenant
from sharelift.emulator.identity.tokens import Tokens, UserInfo, UserLookup
from sharelift.emulator.settings import EmulatorSettings

_DEVICE_CODE_GRANTS = ("urn:ietf:params:oauth:grant-type:device_code", "device_code")


def _appidacr(form: Mapping[str, str], basic: tuple[str, str] | None) -> str:
    """How the client authenticated, as Entra ID's `appidacr` claim says it: "2" a certificate
    assertion, "1" a client secret, "0" none (a public client)."""
    if form.get("client_assertion"):
        return "2"
    if basic is not None or form.get("client_secret") is not None:
        return "1"
    return "0"


class TokenEndpoint:
    """Answers `POST /{tenant}/oauth2/v2.0/token` (the form already parsed)."""

    def __init__(
        self,
        settings: EmulatorSettings,
        tenant: IdentityTenant,
        tokens: Tokens,
        clients: ClientAuthenticator,
        device_codes: DeviceCodes,
        users: UserLookup,
    ) -> None:
        self._settings = settings
        self._tenant = tenant
        self._tokens = tokens
        self._clients = clients
        self._device_codes = device_codes
        self._users = users

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """The token response for a request; raises OAuthError."""
        grant = form.get("grant_type", "")
        scopes = form.get("scope", "").split()
        if grant == "client_credentials":
            client_id = self._clients.authenticate(form, basic, required=True)
            resource_scopes = [s for s in scopes if s not in RESERVED_SCOPES]
            if not resource_scopes or not all(s.endswith("/.default") for s in resource_scopes):
                raise OAuthError(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                    "credential flows must have a scope value with /.default suffixed to the "
                    "resource identifier (application ID URI).",
                )
            resource = self._tenant.resource_of(resource_scopes)
            return self._response(resource, None, client_id, scopes, form, basic)
        if grant in _DEVICE_CODE_GRANTS:
            client_id = self._clients.authenticate(form, basic, required=False)
            user, granted = self._device_codes.redeem(form.get("device_code", ""), client_id)
            resource = self._tenant.resource_of(granted)
            return self._response(resource, user, client_id, granted, form, basic)
        if grant == "refresh_token":
            client_id = self._clients.authenticate(form, basic, required=False)
            upn = self._tokens.refresh_token_upn(form.get("refresh_token", ""), client_id)
            signed_in = self._users(upn)
            if signed_in is None:
                raise unknown_user()
            # Entra ID answers a refresh with a new refresh token too (they rotate), whatever the
            # scopes of this request: offline_access was granted with the first one.
            granted = scopes if "offline_access" in scopes else [*scopes, "offline_access"]
            resource = self._tenant.resource_of(scopes)
            return self._response(resource, signed_in, client_id, granted, form, basic)
        raise OAuthError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def _response(
        self,
        resource: str,
        user: UserInfo | None,
        client_id: str,
        scopes: list[str],
        form: Mapping[str, str],
        basic: tuple[str, str] | None,
    ) -> dict[str, Any]:
        life = self._settings.token_lifetime_s
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": self._tokens.access_token(
                audience=resource, user=user, appidacr=_appidacr(form, basic)
            ),
        }
        if user is not None:
            body["scope"] = " ".join(s for s in scopes if s != "offline_access")
            if "offline_access" in scopes:
                body["refresh_token"] = self._tokens.refresh_token(user, client_id)
            if "openid" in scopes:
                body["id_token"] = self._tokens.id_token(user, client_id, form.get("nonce"))
            if form.get("client_info") == "1":
                info = {"uid": user.object_id, "utid": self._tenant.tenant_id}
                body["client_info"] = b64url(json.dumps(info).encode())
        return body
