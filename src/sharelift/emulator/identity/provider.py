"""`Identity`: the tenant's identity provider, assembled from its parts.

The parts, each usable on its own: `tenant` (names and URLs), `tokens` (issue and verify),
`clients` (client authentication), `device_codes`, `managed_identity`, and `token_endpoint`
(the grants). `Identity` wires them together and offers what the rest of the emulator, its
tests and its users call.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from sharelift.emulator.certs import CertPaths
from sharelift.emulator.identity.clients import ClientAuthenticator
from sharelift.emulator.identity.device_code import DeviceCodes
from sharelift.emulator.identity.managed_identity import ManagedIdentity
from sharelift.emulator.identity.registration import AppCertificate, Registration
from sharelift.emulator.identity.tenant import IdentityTenant
from sharelift.emulator.identity.token_endpoint import TokenEndpoint
from sharelift.emulator.identity.tokens import (
    Principal,
    Tokens,
    UserInfo,
    UserLookup,
    principal_from,
)
from sharelift.emulator.settings import EmulatorSettings


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
        self.tenant = IdentityTenant(settings, registration.tenant_id)
        self.tokens = Tokens(
            settings, self.tenant, registration.client_id, registration.signing_kid, signing_key
        )
        self.clients = ClientAuthenticator(
            self.tenant, registration, AppCertificate.load(certs.app_cert)
        )
        self.device_codes = DeviceCodes(settings, self.tenant, self.clients, users)
        self.managed_identity = ManagedIdentity(
            settings, self.tenant, registration.admin_key, self.tokens
        )
        self.token_endpoint = TokenEndpoint(
            settings, self.tenant, self.tokens, self.clients, self.device_codes, users
        )
        self._users = users

    @property
    def base_url(self) -> str:
        return self.tenant.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.tenant.base_url = value

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id

    @property
    def authority(self) -> str:
        return self.tenant.authority

    @property
    def sharepoint_resources(self) -> dict[str, str]:
        """The SharePoint resources (audiences) of this tenant, by role: root, my, admin."""
        return self.tenant.sharepoint_resources

    def find_user(self, upn: str) -> UserInfo | None:
        """The tenant's user with this UPN (case-insensitive), or None."""
        return self._users(upn)

    def issue_access_token(
        self,
        *,
        audience: str,
        user: UserInfo | None = None,
        lifetime_s: float | None = None,
        tenant_id: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """An access token for `audience`: app-only when `user` is None, else delegated. The
        overrides forge tokens that must be refused (see `Tokens.access_token`)."""
        return self.tokens.access_token(
            audience=audience, user=user, lifetime_s=lifetime_s, tenant_id=tenant_id, issuer=issuer
        )

    def principal(self, token: str, audiences: set[str]) -> Principal:
        """Who a valid access token for one of `audiences` stands for; raises TokenError."""
        return principal_from(self.tokens.verify_access_token(token, audiences))

    def approve_device_code(self, user_code: str, upn: str) -> None:
        """Sign `upn` in for the pending grant `user_code`; raises KeyError / LookupError."""
        self.device_codes.approve(user_code, upn)

    def decline_device_code(self, user_code: str) -> None:
        """The user refuses the grant `user_code`; raises KeyError."""
        self.device_codes.decline(user_code)
