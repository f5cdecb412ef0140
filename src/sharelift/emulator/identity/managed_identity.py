"""Managed identity: Azure App Service's local token endpoint, for workloads without a secret.

A workload finds the endpoint in IDENTITY_ENDPOINT and proves it runs there with the header in
IDENTITY_HEADER; it gets an app-only token for the tenant's system-assigned identity, or for its
one user-assigned identity when it names that identity's client id.
https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

from sharelift.emulator.identity.errors import OAuthError
from sharelift.emulator.identity.tenant import IdentityTenant
from sharelift.emulator.identity.tokens import Tokens
from sharelift.emulator.settings import EmulatorSettings


class ManagedIdentity:
    """The App Service managed-identity endpoint of the tenant."""

    def __init__(
        self, settings: EmulatorSettings, tenant: IdentityTenant, admin_key: str, tokens: Tokens
    ) -> None:
        self._settings = settings
        self._tenant = tenant
        self._admin_key = admin_key
        self._tokens = tokens

    @property
    def info(self) -> dict[str, str]:
        """The endpoint, the header's value, and the client ids of the system-assigned and of
        the user-assigned identity (as emulator.json lists them)."""
        tenant_id = self._tenant.tenant_id
        header = hashlib.sha256(f"{self._admin_key}:msi".encode()).hexdigest()[:32]
        return {
            "endpoint": f"{self._tenant.base_url}/msi/token",
            "header": header,
            "client_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mi:{tenant_id}")),
            "user_assigned_client_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mi-user:{tenant_id}")),
        }

    def token(self, *, header: str | None, resource: str, client_id: str | None) -> dict[str, Any]:
        """An app-only token for the managed identity, in App Service's response shape.

        Raises OAuthError (rendered as App Service's `{"statusCode", "message"}`)."""
        mi = self.info
        if not header or not hmac.compare_digest(header, mi["header"]):
            raise OAuthError(401, "unauthorized", 0, "X-IDENTITY-HEADER is missing or wrong")
        if client_id and client_id != mi["user_assigned_client_id"]:
            raise OAuthError(400, "invalid_request", 0, f"No identity with client_id {client_id}")
        audience = self._tenant.resource_of([resource])
        lifetime = self._settings.token_lifetime_s
        token = self._tokens.access_token(
            audience=audience, lifetime_s=lifetime, client_id=client_id or mi["client_id"]
        )
        return {
            "access_token": token,
            "expires_on": str(int(time.time() + lifetime)),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id or mi["client_id"],
        }
