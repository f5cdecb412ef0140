"""Where Microsoft 365 lives: sign-in and Graph endpoints per national cloud, or a local emulator.

    Cloud.named("global")              login.microsoftonline.com + graph.microsoft.com
    Cloud.named("usgov")               GCC High: login.microsoftonline.us + graph.microsoft.us
    Cloud.named("usgovdod")            DoD: login.microsoftonline.us + dod-graph.microsoft.us
    Cloud.named("china")               21Vianet: login.chinacloudapi.cn + microsoftgraph.chinacloudapi.cn
    Cloud.from_emulator(DIR)           the emulator whose emulator.json is in DIR
    resolve_cloud(name, emulator_dir)  what the command line asks for (--emulator DIR or the
                                       SHARELIFT_EMULATOR variable win over --cloud)

Endpoints from "National cloud deployments" (https://learn.microsoft.com/graph/deployments) and
"Microsoft identity platform national clouds"
(https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud).

This module is client-side: it reads emulator.json and never imports the emulator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharelift.errors import EmulatorError, UsageError

EMULATOR_ENV = "SHARELIFT_EMULATOR"
EMULATOR_FILE = "emulator.json"


@dataclass(frozen=True)
class EmulatorUser:
    upn: str
    id: str
    licensed: bool
    drive_id: str | None
    display_name: str = ""


@dataclass(frozen=True)
class EmulatorInfo:
    """The contents of an emulator's emulator.json (written by `sharelift emulator`)."""

    path: Path
    base_url: str
    graph_url: str
    authority: str
    tenant: str
    tenant_id: str
    domain: str
    ca_file: Path
    client_id: str
    client_secret: str
    certificate_key_file: Path
    certificate_file: Path
    certificate_thumbprint: str
    sharepoint_hosts: Mapping[str, str]
    """root, my, admin: host names such as contoso-admin.sharepoint.com."""
    sharepoint_admin_url: str
    sharepoint_admin_resource: str
    admin_key: str
    users: tuple[EmulatorUser, ...] = ()
    drives: tuple[Mapping[str, Any], ...] = ()
    graph_scope: str = "https://graph.microsoft.com/.default"

    @classmethod
    def load(cls, location: str | os.PathLike[str]) -> EmulatorInfo:
        """Read emulator.json from a data directory (or the file itself).

        Raises EmulatorError naming the file when it is missing, unreadable or malformed.
        """
        path = Path(location).expanduser()
        if path.is_dir() or not path.suffix:
            path = path / EMULATOR_FILE
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise EmulatorError(
                f"{path}: not found; start the emulator with `sharelift emulator --data "
                f"{path.parent}` first"
            ) from exc
        except OSError as exc:
            raise EmulatorError(f"{path}: cannot read ({exc.strerror})") from exc
        except ValueError as exc:
            raise EmulatorError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise EmulatorError(f"{path}: expected a JSON object")
        try:
            return cls._parse(path, raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmulatorError(f"{path}: malformed emulator.json (missing or bad {exc})") from exc

    @classmethod
    def _parse(cls, path: Path, raw: dict[str, Any]) -> EmulatorInfo:
        def text(key: str, source: Mapping[str, Any] = raw) -> str:
            value = source[key]
            if not isinstance(value, str) or not value:
                raise ValueError(repr(key))
            return value

        cert = raw["certificate"]
        hosts = raw["sharepoint"]
        if not isinstance(cert, dict) or not isinstance(hosts, dict):
            raise TypeError("'certificate' or 'sharepoint'")
        users = tuple(
            EmulatorUser(
                upn=text("upn", u),
                id=text("id", u),
                licensed=bool(u.get("licensed", True)),
                drive_id=u.get("drive_id"),
                display_name=str(u.get("display_name", "")),
            )
            for u in raw.get("users", [])
        )
        return cls(
            path=path,
            base_url=text("base_url").rstrip("/"),
            graph_url=text("graph_url").rstrip("/"),
            authority=text("authority").rstrip("/"),
            tenant=text("tenant"),
            tenant_id=text("tenant_id"),
            domain=text("domain"),
            ca_file=Path(text("ca_file")),
            client_id=text("client_id"),
            client_secret=text("client_secret"),
            certificate_key_file=Path(text("key_file", cert)),
            certificate_file=Path(text("cert_file", cert)),
            certificate_thumbprint=text("thumbprint", cert),
            sharepoint_hosts={str(k): str(v) for k, v in hosts.items()},
            sharepoint_admin_url=text("sharepoint_admin_url").rstrip("/"),
            sharepoint_admin_resource=text("sharepoint_admin_resource").rstrip("/"),
            admin_key=text("admin_key"),
            users=users,
            drives=tuple(raw.get("drives", [])),
            graph_scope=str(raw.get("graph_scope") or "https://graph.microsoft.com/.default"),
        )


@dataclass(frozen=True)
class Cloud:
    """Endpoints of one Microsoft 365 cloud (or of the emulator)."""

    name: str
    authority_host: str
    """Sign-in host URL, e.g. https://login.microsoftonline.com (no tenant, no slash)."""
    graph_base_url: str
    """Graph v1.0 root, e.g. https://graph.microsoft.com/v1.0."""
    graph_resource: str
    """The resource (token audience) of Graph, e.g. https://graph.microsoft.com."""
    sharepoint_suffix: str
    """sharepoint.com, sharepoint.us, ...: {tenant}.{suffix} is the root site host."""
    ca_file: Path | None = None
    """A CA bundle to trust instead of the system's (the emulator's own CA); None = system."""
    instance_discovery: bool = True
    """False for hosts Microsoft's instance discovery does not know (the emulator)."""
    emulator: EmulatorInfo | None = field(default=None, compare=False)

    @property
    def graph_scope(self) -> str:
        """The app-only scope for Graph: `{resource}/.default`."""
        return f"{self.graph_resource}/.default"

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None

    def authority(self, tenant: str) -> str:
        """The authority URL MSAL wants for `tenant` (an id, a domain, or "organizations")."""
        return f"{self.authority_host}/{tenant}"

    def sharepoint_admin(self, tenant: str) -> tuple[str, str]:
        """(base URL of the admin host's REST API, the scope to request for it) for `tenant`,
        the tenant's short name (contoso in contoso.sharepoint.com)."""
        resource = f"https://{tenant}-admin.{self.sharepoint_suffix}"
        if self.emulator is not None:
            return self.emulator.sharepoint_admin_url, f"{self.emulator.sharepoint_admin_resource}/.default"
        return resource, f"{resource}/.default"

    @classmethod
    def named(cls, name: str) -> Cloud:
        """One of the national clouds by name; raises UsageError for an unknown name."""
        try:
            return _CLOUDS[name.lower()]
        except KeyError:
            known = ", ".join(sorted(_CLOUDS))
            raise UsageError(f"unknown cloud {name!r} (choose one of: {known})") from None

    @classmethod
    def from_emulator(cls, location: str | os.PathLike[str]) -> Cloud:
        """The emulator whose emulator.json is in `location`; raises EmulatorError."""
        info = EmulatorInfo.load(location)
        authority_host = info.authority.rsplit("/", 1)[0]
        return cls(
            name="emulator",
            authority_host=authority_host,
            graph_base_url=info.graph_url,
            graph_resource=info.graph_scope.removesuffix("/.default"),
            sharepoint_suffix="sharepoint.com",
            ca_file=info.ca_file,
            instance_discovery=False,
            emulator=info,
        )


_CLOUDS: dict[str, Cloud] = {
    "global": Cloud(
        "global",
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com/v1.0",
        "https://graph.microsoft.com",
        "sharepoint.com",
    ),
    "usgov": Cloud(
        "usgov",
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us/v1.0",
        "https://graph.microsoft.us",
        "sharepoint.us",
    ),
    "usgovdod": Cloud(
        "usgovdod",
        "https://login.microsoftonline.us",
        "https://dod-graph.microsoft.us/v1.0",
        "https://dod-graph.microsoft.us",
        "sharepoint-mil.us",
    ),
    "china": Cloud(
        "china",
        "https://login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn/v1.0",
        "https://microsoftgraph.chinacloudapi.cn",
        "sharepoint.cn",
    ),
}
CLOUD_NAMES = tuple(sorted(_CLOUDS))


def resolve_cloud(
    name: str | None = None,
    emulator_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Cloud:
    """The cloud a command talks to: `--emulator DIR`, else $SHARELIFT_EMULATOR, else the
    named cloud (default global). Raises EmulatorError / UsageError."""
    env = os.environ if environ is None else environ
    location = emulator_dir or env.get(EMULATOR_ENV) or None
    if location:
        return Cloud.from_emulator(location)
    return Cloud.named(name or "global")
