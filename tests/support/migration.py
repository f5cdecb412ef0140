"""Test helpers for the emulator's Migration API: SharePoint tokens, REST calls, and a minimal
package writer built from sp-dev-docs' manifest pages (not the product's client), archives of
small files (ArchivedFiles.xml) included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx
from azure.storage.blob import ContainerClient, ContentSettings
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conftest import certificate_credential, close_msal, confidential_app
from sharelift.emulator.server import EmulatorServer
from sharelift.quickxorhash import QuickXorHash

NS = "urn:deployment-{}-schema"
TEAM_SITE = "/sites/Team"
"""The site whose Archive library the import tests fill."""

Tamper = Callable[[ContainerClient, str, bytes, bytes], bool]
"""(container, blob name, plaintext, key) -> True when it uploaded the blob (or left it out)."""


def sharepoint_token(server: EmulatorServer, role: str = "root", *, secret: bool = False) -> str:
    """An app-only token for a SharePoint host (root, my, admin), with the certificate unless
    `secret`."""
    info = server.info
    resource = f"https://{info['sharepoint'][role]}"
    app = confidential_app(info, None if secret else certificate_credential(info))
    try:
        result = app.acquire_token_for_client([f"{resource}/.default"])
    finally:
        close_msal(app)
    assert "access_token" in result, result.get("error_description")
    return str(result["access_token"])


def site_call(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    method: str,
    site: str = "",
    body: dict[str, Any] | None = None,
    *,
    verbose: bool = True,
    http: str = "POST",
) -> httpx.Response:
    """`{site}/_api/site/{method}` on the emulator (site "" is the root site)."""
    accept = "application/json;odata=verbose" if verbose else "application/json;odata=nometadata"
    return client.request(
        http,
        f"{server.base_url}{site}/_api/site/{method}",
        headers={"Authorization": f"Bearer {token}", "Accept": accept},
        json=body,
    )


def encrypt(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv, enc.update(padded) + enc.finalize()


def decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(data) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def upload(
    container: ContainerClient,
    name: str,
    data: bytes,
    key: bytes | None,
    *,
    snapshot: bool = True,
    md5: bytes | None = None,
) -> None:
    """Upload one blob (encrypted when `key`), with its IV, MD5 (or `md5` instead) and a
    snapshot."""
    metadata = {}
    if key is not None:
        iv, data = encrypt(key, data)
        metadata["IV"] = base64.b64encode(iv).decode()
    digest = hashlib.md5(data).digest()  # noqa: S324 — Azure's MD5
    container.upload_blob(
        name,
        data,
        overwrite=True,
        metadata=metadata,
        content_settings=ContentSettings(content_md5=bytearray(digest)),
    )
    if md5 is not None:
        # Azure Storage checks an MD5 sent with the bytes; a wrong one is stored afterwards.
        container.get_blob_client(name).set_http_headers(
            ContentSettings(content_md5=bytearray(md5))
        )
    if snapshot:
        container.get_blob_client(name).create_snapshot()


def _empty(root: str, kind: str) -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?><{root} xmlns="{NS.format(kind)}"/>'.encode()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


@dataclass
class PackageFile:
    name: str
    data: bytes
    parent: str
    """The parent folder's unique id."""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = 1_600_000_000.0
    modified: float = 1_650_000_000.0
    author: str = "1"

    @property
    def file_value(self) -> str:
        """The content blob (or archive member) the manifest names in `FileValue`."""
        return f"{self.id}.dat"


def quickxor_b64(data: bytes) -> str:
    hasher = QuickXorHash()
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


@dataclass
class PackageArchive:
    """A zip of small files listed in ArchivedFiles.xml (migration-manifest.md,
    "ArchivedFiles.xml"; migration-content-package.md, "Archive small files for
    performance"): a content blob of its own whose members are named by the files'
    `FileValue` and hold their plain bytes (the archive is encrypted as a whole)."""

    name: str
    files: list[PackageFile]
    """Listed and zipped; each must be among the package's files too."""
    compression: int = zipfile.ZIP_STORED
    checksum: str | None = None
    """ArchivedFiles.xml's `Checksum`; None: the QuickXorHash of the zip, as it should be."""
    left_out: list[PackageFile] = field(default_factory=list)
    """Listed (and among the package's files) but not in the zip."""
    stray: list[str] = field(default_factory=list)
    """FileValues listed and zipped (one byte each) that no File of the manifest names."""
    corrupt: list[PackageFile] = field(default_factory=list)
    """Members (of `files`, not empty) whose first stored byte is flipped: their CRC fails."""

    def zip_bytes(self) -> bytes:
        out = BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            members = [(f.file_value, f.data) for f in self.files]
            for value, data in [*members, *((v, b"?") for v in self.stray)]:
                info = zipfile.ZipInfo(value, date_time=(2024, 1, 1, 0, 0, 0))
                archive.writestr(info, data, compress_type=self.compression)
            offsets = [archive.getinfo(f.file_value).header_offset for f in self.corrupt]
        zipped = bytearray(out.getvalue())
        for offset in offsets:
            # The local file header: 30 bytes, then the name and the extra field.
            name_length, extra_length = struct.unpack_from("<HH", zipped, offset + 26)
            zipped[offset + 30 + name_length + extra_length] ^= 0xFF
        return bytes(zipped)

    def listed(self) -> list[str]:
        return [f.file_value for f in [*self.files, *self.left_out]] + self.stray

    def element(self) -> str:
        checksum = quickxor_b64(self.zip_bytes()) if self.checksum is None else self.checksum
        files = "".join(f"<File FileValue={quoteattr(v)} />" for v in self.listed())
        return (
            f"<ArchivedFile Name={quoteattr(self.name)} Checksum={quoteattr(checksum)}>"
            f"{files}</ArchivedFile>"
        )


@dataclass
class PackageFolder:
    name: str
    parent: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = 1_500_000_000.0
    modified: float = 1_550_000_000.0


@dataclass
class Package:
    """A file-share package for one library, written as the manifest pages describe."""

    web_id: str
    list_id: str
    root_folder_id: str
    site_url: str
    library_url: str = "Shared Documents"
    source_type: str = "FileShare"
    users: list[tuple[str, str]] = field(default_factory=list)
    """(user id, login) pairs for UserGroupMap.xml."""
    folders: list[PackageFolder] = field(default_factory=list)
    files: list[PackageFile] = field(default_factory=list)
    archives: list[PackageArchive] = field(default_factory=list)
    """Written as ArchivedFiles.xml (without namespace, as the page's sample) when any."""

    def _archived(self) -> set[str]:
        return {f.id for a in self.archives for f in [*a.files, *a.left_out]}

    def _url(self, parent: str, name: str) -> str:
        chain = [name]
        by_id = {f.id: f for f in self.folders}
        while parent in by_id:
            chain.append(by_id[parent].name)
            parent = by_id[parent].parent
        return "/".join([self.library_url, *reversed(chain)])

    def manifest_files(self) -> dict[str, bytes]:
        w, lst = self.web_id, self.list_id
        objects = []
        for folder in self.folders:
            url = self._url(folder.parent, folder.name)
            objects.append(
                f'<SPObject Id="{folder.id}" ObjectType="SPFolder" ParentId="{folder.parent}" '
                f'ParentWebId="{w}" ParentWebUrl="/" Url={quoteattr(url)}>'
                f'<Folder Id="{folder.id}" Name={quoteattr(folder.name)} Url={quoteattr(url)} '
                f'ParentFolderId="{folder.parent}" ParentWebId="{w}" '
                f'ContainingDocumentLibrary="{lst}" TimeCreated="{_iso(folder.created)}" '
                f'TimeLastModified="{_iso(folder.modified)}" Author="1" ModifiedBy="1"/>'
                "</SPObject>"
            )
        archived = self._archived()
        for n, f in enumerate(self.files, start=1):
            url = self._url(f.parent, f.name)
            # An archived file's MD5Hash is of its plain bytes: no blob of its own is stored.
            hashes = (
                f'MD5Hash="{base64.b64encode(hashlib.md5(f.data).digest()).decode()}" '  # noqa: S324
                f'Checksum="{quickxor_b64(f.data)}" '
                if f.id in archived
                else ""
            )
            objects.append(
                f'<SPObject Id="{f.id}" ObjectType="SPFile" ParentId="{f.parent}" '
                f'ParentWebId="{w}" ParentWebUrl="/" Url={quoteattr(url)}>'
                f'<File Id="{f.id}" Name={quoteattr(f.name)} Url={quoteattr(url)} '
                f'ListId="{lst}" ParentId="{f.parent}" ParentWebId="{w}" ListItemIntId="{n}" '
                f'FileValue="{f.file_value}" FileSize="{len(f.data)}" {hashes}Version="1.0" '
                f'TimeCreated="{_iso(f.created)}" TimeLastModified="{_iso(f.modified)}" '
                f'Author="{f.author}" ModifiedBy="{f.author}"/>'
                "</SPObject>"
            )
        users = "".join(
            f'<User Id="{uid}" Name={quoteattr(login)} Login={quoteattr(login)} Email="" '
            'IsDomainGroup="false" IsSiteAdmin="false" SystemId="" IsDeleted="false"/>'
            for uid, login in self.users
        )
        header = '<?xml version="1.0" encoding="utf-8"?>'
        files = {
            "ExportSettings.xml": (
                f'{header}<ExportSettings xmlns="{NS.format("exportsettings")}" '
                f'SiteUrl="{self.site_url}" FileLocation="" IncludeSecurity="None" '
                + (f'SourceType="{self.source_type}" ' if self.source_type else "")
                + 'IgnoreWebParts="true"/>'
            ).encode(),
            "SystemData.xml": (
                f'{header}<SystemData xmlns="{NS.format("systemdata")}">'
                '<SchemaVersion Version="15.0.0.0" Build="16.0.3111.1200" '
                'DatabaseVersion="11552" SiteVersion="15"/>'
                '<ManifestFiles><ManifestFile Name="Manifest.xml"/></ManifestFiles>'
                "<SystemObjects/><RootWebOnlyLists/></SystemData>"
            ).encode(),
            "UserGroupMap.xml": (
                f'{header}<UserGroupMap xmlns="{NS.format("usergroupmap")}">'
                f"<Users>{users}</Users><Groups/></UserGroupMap>"
            ).encode(),
            "RootObjectMap.xml": (
                f'{header}<RootObjects xmlns="{NS.format("rootobjectmap")}">'
                f'<RootObject Id="{lst}" Type="List" ParentId="{w}" WebUrl="/" '
                f'Url="/{self.library_url}" IsDependency="false"/></RootObjects>'
            ).encode(),
            "Requirements.xml": _empty("Requirements", "requirements"),
            "LookupListMap.xml": _empty("LookupLists", "lookuplistmap"),
            "ViewFormsList.xml": _empty("ViewFormsList", "viewformlist"),
            "Manifest.xml": (
                f'{header}<SPObjects xmlns="{NS.format("manifest")}">{"".join(objects)}</SPObjects>'
            ).encode(),
        }
        if self.archives:
            archives = "".join(a.element() for a in self.archives)
            files["ArchivedFiles.xml"] = (
                f"{header}<ArchivedFiles>{archives}</ArchivedFiles>".encode()
            )
        return files

    def content_files(self) -> dict[str, bytes]:
        """Each file's blob, or the archive that holds it."""
        archived = self._archived()
        blobs = {f.file_value: f.data for f in self.files if f.id not in archived}
        return blobs | {a.name: a.zip_bytes() for a in self.archives}


def progress(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    job_id: str,
    next_token: str = "0",  # noqa: S107 — a progress token, not a secret
    site: str = "",
) -> tuple[list[dict[str, str]], str]:
    r = client.get(
        f"{server.base_url}{site}/_api/site/GetMigrationJobProgress(jobId='{job_id}',"
        f"nextToken='{next_token}')",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json;odata=verbose"},
    )
    assert r.status_code == 200, r.text
    body = r.json()["d"]["GetMigrationJobProgress"]
    return [json.loads(e) for e in body["Logs"]["results"]], body["NextToken"]


def wait_for_end(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    job_id: str,
    site: str = "",
    timeout: float = 60,
) -> list[dict[str, str]]:
    """Poll GetMigrationJobProgress until JobEnd; returns every event."""
    events: list[dict[str, str]] = []
    next_token = "0"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page, next_token = progress(client, server, token, job_id, next_token, site)
        events += page
        if events and events[-1]["Event"] == "JobEnd":
            return events
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end: {[e['Event'] for e in events]}")


@dataclass
class Target:
    """A library to import into: its web id, list id, root folder's unique id, and drive."""

    web_id: str
    list_id: str
    root_id: str
    drive_id: str


def team_archive_library(graph: httpx.Client) -> Target:
    """The Team site's Archive library, its ids read through Graph."""
    site = graph.get("/sites/contoso.sharepoint.com:/sites/Team").json()
    web_id = site["id"].split(",")[2]
    drive = next(
        d
        for d in graph.get(f"/sites/{site['id']}/drives").json()["value"]
        if d["name"] == "Archive"
    )
    lst = graph.get(f"/drives/{drive['id']}/list").json()
    root = graph.get(f"/drives/{drive['id']}/root", params={"$select": "id,sharepointIds"}).json()
    ids = root["sharepointIds"]
    assert ids["listId"] == lst["id"] and ids["webId"] == web_id
    return Target(web_id, lst["id"], ids["listItemUniqueId"], drive["id"])


def package_for(
    target: Target,
    files: list[PackageFile],
    folders: list[PackageFolder],
    archives: list[PackageArchive] | None = None,
) -> Package:
    """A package of these files and folders for `target` (the Team site's Archive library),
    with one known and one unknown user."""
    return Package(
        web_id=target.web_id,
        list_id=target.list_id,
        root_folder_id=target.root_id,
        site_url="https://contoso.sharepoint.com/sites/Team",
        library_url="Archive",
        users=[("1", "i:0#.f|membership|megan@contoso.com"), ("2", "ghost@fabrikam.com")],
        folders=folders,
        files=files,
        archives=archives or [],
    )


def submit(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    package: Package,
    *,
    tamper: Tamper | None = None,
    queue: str | None = None,
) -> tuple[str, bytes, ContainerClient]:
    """Upload `package` into containers provided for the Team site and create an encrypted
    job; returns (job id, key, manifest container). `tamper` may upload a blob its own way
    (a provided container's SAS cannot delete)."""
    r = site_call(client, server, token, "ProvisionMigrationContainers", TEAM_SITE)
    info = r.json()["d"]["ProvisionMigrationContainers"]
    key = base64.b64decode(info["EncryptionKey"])
    ca = server.info["ca_file"]
    data = ContainerClient.from_container_url(info["DataContainerUri"], connection_verify=ca)
    meta = ContainerClient.from_container_url(info["MetadataContainerUri"], connection_verify=ca)
    for container, blobs in ((data, package.content_files()), (meta, package.manifest_files())):
        for name, body in blobs.items():
            if tamper is None or not tamper(container, name, body, key):
                upload(container, name, body, key)
    r = site_call(
        client,
        server,
        token,
        "CreateMigrationJobEncrypted",
        TEAM_SITE,
        {
            "gWebId": package.web_id,
            "azureContainerSourceUri": info["DataContainerUri"],
            "azureContainerManifestUri": info["MetadataContainerUri"],
            "azureQueueReportUri": queue,
            "options": {"AES256CBCKey": info["EncryptionKey"]},
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["d"]["CreateMigrationJobEncrypted"], key, meta


def children(graph: httpx.Client, drive_id: str, path: str) -> dict[str, dict[str, Any]]:
    """The children of folder `path` of the drive, by name, through Graph."""
    r = graph.get(f"/drives/{drive_id}/root:/{path}:/children")
    assert r.status_code == 200, r.text
    return {c["name"]: c for c in r.json()["value"]}
