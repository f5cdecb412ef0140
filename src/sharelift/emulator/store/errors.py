"""The failures the store reports: Graph's (status, code, message) and provisioning refusals.

The store raises `DriveError` for everything Graph answers as an error, so that the route layer
can turn it into Graph's error body without knowing why it happened.
"""

from __future__ import annotations


class DriveError(Exception):
    """A failure Graph reports to the client: HTTP status, Graph error code, message."""

    def __init__(self, status: int, code: str, message: str, inner_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code


def not_found(what: str = "The resource could not be found.") -> DriveError:
    return DriveError(404, "itemNotFound", what)


def name_exists() -> DriveError:
    # Observed body: {"code": "nameAlreadyExists", "message": "The specified item name already
    # exists."} (OneDrive/onedrive-api-docs#447, #977).
    return DriveError(409, "nameAlreadyExists", "The specified item name already exists.")


def insufficient_storage() -> DriveError:
    # Graph's error table: 507 Insufficient Storage, "The maximum storage quota has been
    # reached" (https://learn.microsoft.com/graph/errors); inner code quotaLimitReached.
    return DriveError(
        507,
        "insufficientStorage",
        "Insufficient Storage: the maximum storage quota has been reached.",
        inner_code="quotaLimitReached",
    )


class ProvisioningError(Exception):
    """A OneDrive cannot be provisioned for this user."""


class UnknownUserError(ProvisioningError):
    """No such user in the tenant."""


class UnlicensedUserError(ProvisioningError):
    """The user has no licence that includes OneDrive."""
