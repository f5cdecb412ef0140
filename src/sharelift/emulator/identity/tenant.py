"""The tenant as the identity platform names it: its id and domains, its URLs (authority,
issuer, endpoints), and the resources it issues tokens for (Microsoft Graph, SharePoint).

`base_url` (scheme://host:port, no trailing slash) is set by the server once its port is known;
every URL here is derived from it at the time it is asked for.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sharelift.emulator.identity.errors import OAuthError
from sharelift.emulator.settings import EmulatorSettings

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
"""Microsoft Graph's well-known application id; tokens may carry it as `aud`."""
SHAREPOINT_APP_ID = "00000003-0000-0ff1-ce00-000000000000"

RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
"""OpenID scopes: they name no resource."""


class IdentityTenant:
    """Names and URLs of the tenant in the identity platform."""

    def __init__(self, settings: EmulatorSettings, tenant_id: str) -> None:
        self.name = settings.tenant
        self.tenant_id = tenant_id
        self.base_url = f"https://{settings.host}:{settings.port}"

    @property
    def domain(self) -> str:
        """The initial domain, `{tenant}.onmicrosoft.com`."""
        return f"{self.name}.onmicrosoft.com"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    @property
    def authority(self) -> str:
        """The authority URL MSAL is given."""
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def sharepoint_resources(self) -> dict[str, str]:
        """The SharePoint resources (audiences) of this tenant, by role: root, my, admin."""
        return {
            "root": f"https://{self.name}.sharepoint.com",
            "my": f"https://{self.name}-my.sharepoint.com",
            "admin": f"https://{self.name}-admin.sharepoint.com",
        }

    def graph_audiences(self) -> set[str]:
        """The `aud` values Graph accepts."""
        return {GRAPH_RESOURCE, GRAPH_APP_ID, GRAPH_RESOURCE + "/"}

    def tenant_aliases(self) -> set[str]:
        """Tenant segments accepted in URLs: the id, the domains (the initial *.onmicrosoft.com
        one and the users' {tenant}.com), and the multi-tenant names."""
        return {self.tenant_id, self.domain, f"{self.name}.com", "organizations", "common"}

    def knows_tenant(self, segment: str) -> bool:
        return segment.lower() in {a.lower() for a in self.tenant_aliases()}

    def resource_of(self, scopes: list[str]) -> str:
        """The single resource the scopes are for (Entra ID issues a token for one resource).

        Raises OAuthError for scopes of several resources or of a resource the tenant lacks."""
        resources: set[str] = set()
        for s in scopes:
            if s in RESERVED_SCOPES:
                continue
            if "://" in s:
                parts = urlsplit(s)
                resources.add(f"{parts.scheme}://{parts.netloc}".lower())
            else:  # GRAPH_APP_ID/..., or a bare scope such as Files.ReadWrite.All: Graph's
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
        if resource not in {GRAPH_RESOURCE, *self.sharepoint_resources.values()}:
            raise OAuthError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.name}.",
            )
        return resource

    def openid_configuration(self) -> dict[str, Any]:
        """The OpenID Connect discovery document
        (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc)."""
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
