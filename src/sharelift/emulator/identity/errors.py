"""The identity platform's two refusals: a token endpoint error and a refused access token."""

from __future__ import annotations


class OAuthError(Exception):
    """An error answered by the token endpoints in Entra ID's shape (`AADSTS{code}`)."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{code}")
        self.status, self.error, self.code, self.description = status, error, code, description


class TokenError(Exception):
    """An access token was refused; `message` is safe to show (it never contains the token)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def missing_client_id() -> OAuthError:
    return OAuthError(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'client_id'.",
    )


def unknown_user() -> OAuthError:
    return OAuthError(
        400, "invalid_grant", 50034, "The user account does not exist in this directory."
    )
