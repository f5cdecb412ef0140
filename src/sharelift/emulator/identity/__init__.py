"""The tenant's identity provider: the OAuth 2.0 / OpenID Connect endpoints MSAL talks to.

It follows the Microsoft identity platform v2.0 endpoints closely enough that MSAL's real flows
run unchanged against it: client credentials with a secret or a certificate assertion, device
code, refresh tokens, and App Service's managed-identity endpoint. Access tokens are RS256 JWTs
signed by a key kept in the data folder; `GraphAuthMiddleware` checks them on every `/v1.0/`
request and attaches the caller's `Principal` to `request.state.principal`.

Modules, one role each:

    registration       the app registration and keys (identity.json, signing-key.pem; 0600)
    tenant             the tenant's names, URLs and resources (audiences)
    tokens             issuing and verifying JWTs; Principal, UserInfo
    clients            client authentication: secret, certificate assertion
    token_endpoint     the grants: client credentials, device code, refresh
    device_code        pending device-code sign-ins
    managed_identity   the App Service managed-identity endpoint
    endpoints          the HTTP routes of all of the above
    graph_auth         the Graph authentication middleware
    provider           `Identity`, which assembles the parts
"""

from sharelift.emulator.identity.endpoints import oauth_error_response, routes
from sharelift.emulator.identity.errors import OAuthError, TokenError
from sharelift.emulator.identity.graph_auth import GraphAuthMiddleware
from sharelift.emulator.identity.provider import Identity
from sharelift.emulator.identity.registration import Registration, load_or_create_registration
from sharelift.emulator.identity.tenant import GRAPH_APP_ID, GRAPH_RESOURCE, SHAREPOINT_APP_ID
from sharelift.emulator.identity.tokens import Principal, UserInfo, UserLookup

__all__ = [
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "SHAREPOINT_APP_ID",
    "GraphAuthMiddleware",
    "Identity",
    "OAuthError",
    "Principal",
    "Registration",
    "TokenError",
    "UserInfo",
    "UserLookup",
    "load_or_create_registration",
    "oauth_error_response",
    "routes",
]
