"""emulator.json: what a client needs to connect (URLs, credentials, users, drives).

The server writes it (0600) into the data folder at every start; `GET /_emulator/info` answers
the same document as of now. docs/emulator.md describes each key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sharelift.emulator.certs import CertPaths
from sharelift.emulator.hosts import sharepoint_hosts
from sharelift.emulator.identity import GRAPH_RESOURCE, Identity
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import Store

INFO_FILE = "emulator.json"


def connection_info(
    settings: EmulatorSettings, identity: Identity, certs: CertPaths, store: Store
) -> dict[str, Any]:
    """The emulator.json contents for the tenant as it is now."""
    base = identity.base_url
    sp = identity.sharepoint_resources
    reg = identity.registration
    return {
        "version": 1,
        "base_url": base,
        "graph_url": f"{base}/v1.0",
        "graph_scope": f"{GRAPH_RESOURCE}/.default",
        "authority": identity.authority,
        "tenant": settings.tenant,
        "tenant_id": identity.tenant_id,
        "domain": f"{settings.tenant}.com",
        "ca_file": str(certs.ca_cert),
        "client_id": reg.client_id,
        "client_secret": reg.client_secret,
        "certificate": {
            "key_file": str(certs.app_key),
            "cert_file": str(certs.app_cert),
            "thumbprint": certs.app_thumbprint_sha1,
            "thumbprint_sha256": certs.app_thumbprint_sha256,
        },
        "sharepoint": {role: url.removeprefix("https://") for role, url in sp.items()},
        "sharepoint_admin_url": base,
        # Upload and download URLs name the tenant's SharePoint hosts, as the service's do;
        # a client connects to this address for them (TLS SNI and Host stay the URL's host).
        "connect": {
            host: urlsplit(base).netloc for host in sharepoint_hosts(settings.tenant).values()
        },
        "sharepoint_admin_resource": sp["admin"],
        "sharepoint_admin_scope": f"{sp['admin']}/.default",
        "users": [
            {
                "upn": u.upn,
                "id": u.id,
                "display_name": u.display_name,
                "licensed": u.licensed,
                "drive_id": u.drive_id,
            }
            for u in store.tenant.users()
        ],
        "drives": store.tenant.drives_summary(),
        "managed_identity": identity.managed_identity.info,
        "admin_key": reg.admin_key,
        "admin_header": "X-Emulator-Key",
    }
