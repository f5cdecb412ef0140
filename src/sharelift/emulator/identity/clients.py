"""Client authentication at the token endpoint: is this the registered app, and did it prove it?

A confidential client proves itself with its secret (in the form, or HTTP Basic) or with a
certificate assertion, a JWT it signs with the app certificate's key
(https://learn.microsoft.com/entra/identity-platform/certificate-credentials). Public-client
grants (device code, refresh) may come without a credential.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import jwt

from sharelift.emulator.identity.errors import OAuthError, missing_client_id
from sharelift.emulator.identity.registration import AppCertificate, Registration
from sharelift.emulator.identity.tenant import IdentityTenant

_CLOCK_SKEW_S = 300  # Entra ID tolerates five minutes of clock skew on assertions
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientAuthenticator:
    """Checks the client of a token request against the app registration."""

    def __init__(
        self, tenant: IdentityTenant, registration: Registration, certificate: AppCertificate
    ) -> None:
        self._tenant = tenant
        self._registration = registration
        self._certificate = certificate

    def check_client_id(self, client_id: str) -> None:
        """Raise OAuthError unless `client_id` is the registered app's."""
        if client_id != self._registration.client_id:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self._tenant.name}'.",
            )

    def authenticate(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, required: bool
    ) -> str:
        """Check the client's credential, if any (one is needed when `required`); return its
        client id. Raises OAuthError."""
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
            raise missing_client_id()
        self.check_client_id(client_id)
        if secret is not None:
            expected = self._registration.client_secret.encode()
            if not hmac.compare_digest(secret.encode(), expected):
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
        if form.get("client_assertion_type") != _ASSERTION_TYPE:
            raise OAuthError(
                400,
                "invalid_request",
                50027,
                f"client_assertion_type must be {_ASSERTION_TYPE}.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise OAuthError(401, "invalid_client", 50027, "Invalid JWT token.") from exc
        x5t = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        if x5t not in self._certificate.thumbprints:
            raise OAuthError(
                401,
                "invalid_client",
                700027,
                f"The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of "
                f"key used by client: '{x5t}']",
            )
        base, aliases = self._tenant.base_url, self._tenant.tenant_aliases()
        audiences = [f"{base}/{alias}/oauth2/v2.0/token" for alias in aliases] + [
            f"{base}/{alias}/oauth2/token" for alias in aliases
        ]
        try:
            claims = jwt.decode(
                assertion,
                self._certificate.public_key,
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
