"""Reading the SAS URIs a client hands to CreateMigrationJob, and checking their permissions.

What the service requires of the caller's own containers and queue (sp-dev-docs
`docs/apis/migration-api-reference.md`, `migration-content-package.md` "Permissions"):
content exactly Read + List, manifest exactly Read + List + Write (the logs are written back),
queue exactly Add + Read + Update; a SAS with other flags is rejected when the job is created.
Every SAS must be limited to HTTPS (`spr=https`), as SharePoint's own are since 2024.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

CONTENT_PERMISSIONS = frozenset("rl")
MANIFEST_PERMISSIONS = frozenset("rlw")
QUEUE_PERMISSIONS = frozenset("rau")


class SasError(ValueError):
    """A SAS URI the service refuses; the message names the parameter and why."""


@dataclass(frozen=True)
class SasUri:
    """One container or queue URI with its SAS, split into the parts the service checks."""

    uri: str
    scheme: str
    host: str
    account: str
    name: str
    """The container (or queue) name."""
    permissions: frozenset[str]
    protocol: str
    expiry: dt.datetime | None

    @property
    def base(self) -> str:
        """The URI without its query (no signature: safe to compare and to log)."""
        return f"{self.scheme}://{self.host}/{self.account}/{self.name}"


def _expiry(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_sas_uri(parameter: str, uri: object) -> SasUri:
    """Split `uri` (path-style, as Azurite serves, or host-style, as Azure does).

    Raises SasError naming `parameter` when it is not an HTTPS URI carrying a SAS.
    """
    if not isinstance(uri, str) or not uri:
        raise SasError(f"{parameter} is missing")
    parts = urlsplit(uri)
    if parts.scheme != "https":
        raise SasError(f"{parameter} must be an https URI")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if "sig" not in query or "sp" not in query:
        raise SasError(f"{parameter} carries no shared access signature")
    segments = [s for s in parts.path.split("/") if s]
    host = parts.netloc
    if len(segments) == 2:  # https://127.0.0.1:10000/account/container
        account, name = segments
    elif len(segments) == 1:  # https://account.blob.core.windows.net/container
        account, name = host.split(".", 1)[0], segments[0]
    else:
        raise SasError(f"{parameter} must name one container or queue")
    return SasUri(
        uri=uri,
        scheme=parts.scheme,
        host=host,
        account=account,
        name=name,
        permissions=frozenset(query["sp"]),
        protocol=query.get("spr", "https,http"),
        expiry=_expiry(query.get("se")),
    )


def check_own(parameter: str, sas: SasUri, required: frozenset[str]) -> None:
    """Refuse a caller's own SAS whose flags are not exactly `required`, or that allows HTTP."""
    if sas.permissions != required:
        wanted = "".join(sorted(required))
        given = "".join(sorted(sas.permissions))
        raise SasError(
            f"{parameter}: the SAS must grant exactly the permissions '{wanted}' (it grants "
            f"'{given}')"
        )
    if sas.protocol != "https":
        raise SasError(f"{parameter}: the SAS must be limited to HTTPS (spr=https)")
    if sas.expiry is not None and sas.expiry <= dt.datetime.now(dt.UTC):
        raise SasError(f"{parameter}: the SAS has expired")
