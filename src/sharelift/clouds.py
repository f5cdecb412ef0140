"""Microsoft 365 endpoints per cloud, and the local emulator as one more cloud.

    global     login.microsoftonline.com   graph.microsoft.com              sharepoint.com
    usgov      login.microsoftonline.us    graph.microsoft.us               sharepoint.us
    usgovdod   login.microsoftonline.us    dod-graph.microsoft.us           sharepoint-mil.us
    china      login.chinacloudapi.cn      microsoftgraph.chinacloudapi.cn  sharepoint.cn
    emulator   from DIR/emulator.json (`--emulator DIR` or SHARELIFT_EMULATOR=DIR)

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

from sharelift.errors import UsageError

EMULATOR_ENV = "SHARELIFT_EMULATOR"


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
    def graph_scope(self) -> str:
        return f"{self.graph_resource}/.default"

    def authority(self, tenant: str) -> str:
        """The MSAL authority for a tenant (id or domain)."""
        if self.fixed_authority:
            return self.fixed_authority
        if not tenant:
            raise UsageError("--tenant is needed (the tenant id or its domain, contoso.com)")
        return f"{self.login_url}/{tenant}"

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
        raise UsageError(
            f"{path} does not exist: start `sharelift emulator --data {directory}` first"
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
    """The cloud to talk to: the emulator when a directory is given (or SHARELIFT_EMULATOR
    is set), else the named cloud."""
    directory = emulator_dir or os.environ.get(EMULATOR_ENV) or None
    if directory:
        return emulator_cloud(directory)
    try:
        return CLOUDS[name]
    except KeyError:
        raise UsageError(f"--cloud {name!r}: choose one of {', '.join(CLOUDS)}") from None
