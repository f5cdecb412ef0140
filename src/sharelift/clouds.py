"""Microsoft 365 endpoints per cloud, and the local emulator as one more cloud.

    global     login.microsoftonline.com   graph.microsoft.com              sharepoint.com
    usgov      login.microsoftonline.us    graph.microsoft.us               sharepoint.us
    usgovdod   login.microsoftonline.us    dod-graph.microsoft.us           sharepoint-mil.us
    china      login.chinacloudapi.cn      microsoftgraph.chinacloudapi.cn  sharepoint.cn
    emulator   from DIR/emulator.json (the `emulator` option: the emulator's data folder)

`resolve_cloud(name, emulator_dir)` is what the command line uses; `Cloud.from_emulator(DIR)` (same
as `emulator_cloud`) and `EmulatorInfo.load(DIR)` (every emulator.json field, typed) serve code
and tests that talk to an emulator directly.

Sources: "National cloud deployments" (https://learn.microsoft.com/en-us/graph/deployments) and
"Microsoft 365 GCC High and DoD endpoints". This module only reads the emulator's JSON file; it
does not import the emulator (the client and the emulator share no wire code).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharelift.errors import OptionError, UsageError


@dataclass(frozen=True)
class Cloud:
    """Where to sign in and where Graph is, for one cloud."""

    name: str
    login_url: str
    graph_resource: str
    sharepoint_suffix: str
    graph_url: str = ""
    ca_file: str | None = None
    """A CA to trust for this cloud's endpoints (the emulator's); None: the system's."""
    instance_discovery: bool = True
    """MSAL validates the authority against Microsoft; off for the emulator."""
    fixed_authority: str | None = None
    """The emulator has one tenant: its authority, whatever --tenant says."""
    emulator: dict[str, Any] = field(default_factory=dict, repr=False)
    """The emulator's emulator.json (it holds the test app's secret: never printed)."""

    def __post_init__(self) -> None:
        if not self.graph_url:
            object.__setattr__(self, "graph_url", f"{self.graph_resource}/v1.0")

    @property
    def authority_host(self) -> str:
        """The sign-in host URL (no tenant), e.g. https://login.microsoftonline.com."""
        return self.login_url

    @property
    def graph_base_url(self) -> str:
        """Graph's v1.0 root (same as graph_url)."""
        return self.graph_url

    @property
    def is_emulator(self) -> bool:
        return self.name == "emulator"

    @classmethod
    def from_emulator(cls, directory: str | os.PathLike[str]) -> Cloud:
        """The emulator whose emulator.json is in DIR; raises UsageError naming the file."""
        return emulator_cloud(directory)

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_resource}/.default"

    def authority(self, tenant: str) -> str:
        """The MSAL authority for a tenant (id or domain)."""
        if self.fixed_authority:
            return self.fixed_authority
        if not tenant:
            raise OptionError("tenant", "the tenant is needed (its id or domain, contoso.com)")
        return f"{self.login_url}/{tenant}"

    @property
    def connect(self) -> dict[str, str]:
        """Host name -> `host:port` to connect to instead (the emulator's `connect` map, under
        which its SharePoint hosts are reached; see `sharelift.graph.connect`); {} for a cloud."""
        found = self.emulator.get("connect") if self.emulator else None
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def sharepoint_admin_resource(self, tenant_name: str) -> str:
        """`https://contoso-admin.sharepoint.com` for the tenant named contoso."""
        if self.emulator:
            return str(self.emulator["sharepoint_admin_resource"])
        return f"https://{tenant_name}-admin.{self.sharepoint_suffix}"

    def sharepoint_admin_url(self, tenant_name: str) -> str:
        """Where the SharePoint admin REST API is reached (the emulator serves it itself)."""
        if self.emulator:
            return str(self.emulator["sharepoint_admin_url"])
        return self.sharepoint_admin_resource(tenant_name)


CLOUDS: dict[str, Cloud] = {
    "global": Cloud(
        "global",
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
        "sharepoint.com",
    ),
    "usgov": Cloud(
        "usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us", "sharepoint.us"
    ),
    "usgovdod": Cloud(
        "usgovdod",
        "https://login.microsoftonline.us",
        "https://dod-graph.microsoft.us",
        "sharepoint-mil.us",
    ),
    "china": Cloud(
        "china",
        "https://login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn",
        "sharepoint.cn",
    ),
}


def load_emulator_info(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read DIR/emulator.json; raises UsageError naming the file when it is missing or bad."""
    path = Path(directory) / "emulator.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(
            "emulator", f"{path} does not exist: no emulator has used {directory} yet"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a readable emulator.json: {exc}") from None
    required = ("graph_url", "graph_scope", "authority", "ca_file", "client_id")
    missing = [key for key in required if not isinstance(info, dict) or key not in info]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)}: not an emulator.json")
    return dict(info)


def emulator_cloud(directory: str | os.PathLike[str]) -> Cloud:
    """The emulator in DIR as a cloud."""
    info = load_emulator_info(directory)
    scope = str(info["graph_scope"])
    return Cloud(
        name="emulator",
        login_url=str(info.get("base_url", "")),
        graph_resource=scope.removesuffix("/.default"),
        sharepoint_suffix="sharepoint.com",
        graph_url=str(info["graph_url"]),
        ca_file=str(info["ca_file"]),
        instance_discovery=False,
        fixed_authority=str(info["authority"]),
        emulator=info,
    )


def resolve_cloud(
    name: str = "global", emulator_dir: str | os.PathLike[str] | None = None
) -> Cloud:
    """The cloud to talk to: the emulator when its data folder is given, else the named cloud.
    Raises OptionError naming `cloud` or `emulator`."""
    if emulator_dir:
        return emulator_cloud(emulator_dir)
    try:
        return CLOUDS[name]
    except KeyError:
        raise OptionError("cloud", f"choose one of {', '.join(CLOUDS)}, not {name!r}") from None


@dataclass(frozen=True)
class EmulatorUser:
    upn: str
    id: str
    licensed: bool
    drive_id: str | None
    display_name: str = ""


@dataclass(frozen=True)
class EmulatorInfo:
    """Every field of an emulator's emulator.json, typed (written by `sharelift emulator`)."""

    path: Path
    base_url: str
    graph_url: str
    graph_scope: str
    authority: str
    tenant: str
    tenant_id: str
    domain: str
    ca_file: Path
    client_id: str
    client_secret: str = field(repr=False)
    certificate_key_file: Path
    certificate_file: Path
    certificate_thumbprint: str
    sharepoint_hosts: dict[str, str]
    """root, my, admin: host names such as contoso-admin.sharepoint.com."""
    sharepoint_admin_url: str
    sharepoint_admin_resource: str
    admin_key: str = field(repr=False)
    connect: dict[str, str] = field(default_factory=dict)
    """SharePoint host -> the `host:port` serving it (see `Cloud.connect`)."""
    users: tuple[EmulatorUser, ...] = ()
    drives: tuple[dict[str, Any], ...] = ()

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmulatorInfo:
        """Read DIR/emulator.json; raises UsageError naming the file when it is missing or bad."""
        raw = load_emulator_info(directory)
        path = Path(directory) / "emulator.json"

        def text(key: str, source: dict[str, Any] = raw) -> str:
            value = source.get(key)
            if not isinstance(value, str) or not value:
                raise UsageError(f"{path} lacks {key}: not an emulator.json")
            return value

        cert = raw.get("certificate")
        hosts = raw.get("sharepoint")
        if not isinstance(cert, dict) or not isinstance(hosts, dict):
            raise UsageError(f"{path} lacks certificate or sharepoint: not an emulator.json")
        users = raw.get("users", [])
        if not isinstance(users, list) or not all(isinstance(u, dict) for u in users):
            raise UsageError(f"{path}: users must be a list of objects")
        return cls(
            path=path,
            base_url=text("base_url"),
            graph_url=text("graph_url"),
            graph_scope=text("graph_scope"),
            authority=text("authority"),
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
            sharepoint_admin_url=text("sharepoint_admin_url"),
            sharepoint_admin_resource=text("sharepoint_admin_resource"),
            admin_key=text("admin_key"),
            connect={str(k): str(v) for k, v in (raw.get("connect") or {}).items()},
            users=tuple(
                EmulatorUser(
                    upn=text("upn", u),
                    id=text("id", u),
                    licensed=bool(u.get("licensed", True)),
                    drive_id=u.get("drive_id") or None,
                    display_name=str(u.get("display_name", "")),
                )
                for u in users
            ),
            drives=tuple(d for d in raw.get("drives", []) if isinstance(d, dict)),
        )
