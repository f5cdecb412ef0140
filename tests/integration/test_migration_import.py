"""Packages imported by the emulator's Migration API, checked through Graph, over HTTPS, with
Azurite behind them. The packages are written here from the manifest pages."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from sharelift.emulator.server import EmulatorServer
from sharelift.quickxorhash import QuickXorHash
from support.emulator_http import graph_http
from support.migration import (
    Package,
    PackageFile,
    PackageFolder,
    decrypt,
    progress,
    sharepoint_token,
    site_call,
    upload,
    wait_for_end,
)

pytestmark = pytest.mark.slow
SITE = "/sites/Team"


Tamper = Callable[[ContainerClient, str, bytes, bytes], bool]
"""(container, blob name, plaintext, key) -> True when it uploaded the blob (or left it out)."""


@dataclass
class Target:
    web_id: str
    list_id: str
    root_id: str
    drive_id: str


@pytest.fixture
def client(
    migration_emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> httpx.Client:
    return http_client(migration_emulator)


@pytest.fixture(scope="module")
def token(migration_emulator: EmulatorServer) -> str:
    return sharepoint_token(migration_emulator)


@pytest.fixture
def graph(
    migration_emulator: EmulatorServer, app_token: Callable[..., str]
) -> Iterator[httpx.Client]:
    info = migration_emulator.info
    with graph_http(info, app_token(migration_emulator), http2=False, timeout=30) as g:
        yield g


@pytest.fixture
def target(graph: httpx.Client) -> Target:
    """The Team site's web id, its Archive library's list id and root folder id, from Graph."""
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


def _package(target: Target, files: list[PackageFile], folders: list[PackageFolder]) -> Package:
    return Package(
        web_id=target.web_id,
        list_id=target.list_id,
        root_folder_id=target.root_id,
        site_url="https://contoso.sharepoint.com/sites/Team",
        library_url="Archive",
        users=[("1", "i:0#.f|membership|megan@contoso.com"), ("2", "ghost@fabrikam.com")],
        folders=folders,
        files=files,
    )


def _submit(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    package: Package,
    *,
    tamper: Tamper | None = None,
    queue: str | None = None,
) -> tuple[str, bytes, ContainerClient]:
    """Upload `package` into provided containers and create an encrypted job. `tamper` may
    upload a blob its own way (a provided container's SAS cannot delete)."""
    r = site_call(client, server, token, "ProvisionMigrationContainers", SITE)
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
        SITE,
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


def _qxh(data: bytes) -> str:
    h = QuickXorHash()
    h.update(data)
    return base64.b64encode(h.digest()).decode()


def _children(graph: httpx.Client, drive_id: str, path: str) -> dict[str, dict[str, object]]:
    r = graph.get(f"/drives/{drive_id}/root:/{path}:/children")
    assert r.status_code == 200, r.text
    return {c["name"]: c for c in r.json()["value"]}


def test_an_encrypted_package_imports_with_times_authors_and_hashes(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Reports-{uuid.uuid4().hex[:6]}", target.root_id)
    sub = PackageFolder("2024", folder.id)
    files = [
        PackageFile("a.txt", b"alpha" * 1000, folder.id),
        PackageFile("empty.bin", b"", sub.id),
        PackageFile("b.csv", bytes(range(256)) * 40, sub.id, author="2"),
    ]
    package = _package(target, files, [folder, sub])
    job_id, key, meta = _submit(client, migration_emulator, token, package)
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    names = [e["Event"] for e in events]
    assert names[:2] == ["JobQueued", "JobStart"]
    assert "JobProgress" in names and names[-1] == "JobEnd"
    assert "JobError" not in names and "JobFatalError" not in names
    end = events[-1]
    assert end["FilesCreated"] == "3"
    assert end["BytesProcessed"] == str(sum(len(f.data) for f in files))
    assert end["TotalErrors"] == "0"
    warnings = [e for e in events if e["Event"] == "JobWarning"]
    assert [w["Message"] for w in warnings] == ["Failed to ensure user 'ghost@fabrikam.com'"]

    top = _children(graph, target.drive_id, folder.name)
    assert set(top) == {"a.txt", "2024"}
    a = top["a.txt"]
    assert a["size"] == 5000
    assert a["file"]["hashes"]["quickXorHash"] == _qxh(files[0].data)  # type: ignore[index]
    assert a["fileSystemInfo"]["lastModifiedDateTime"] == "2022-04-15T05:20:00Z"  # type: ignore[index]
    assert a["fileSystemInfo"]["createdDateTime"] == "2020-09-13T12:26:40Z"  # type: ignore[index]
    assert a["createdBy"]["user"]["email"] == "megan@contoso.com"  # type: ignore[index]
    ids = graph.get(
        f"/drives/{target.drive_id}/items/{a['id']}", params={"$select": "sharepointIds"}
    ).json()["sharepointIds"]
    assert ids["listItemUniqueId"] == files[0].id and ids["listId"] == target.list_id
    inner = _children(graph, target.drive_id, f"{folder.name}/2024")
    assert inner["empty.bin"]["size"] == 0
    assert inner["b.csv"]["createdBy"]["user"]["displayName"] == "System Account"  # type: ignore[index]
    downloaded = graph.get(
        f"/drives/{target.drive_id}/items/{inner['b.csv']['id']}/content", follow_redirects=True
    )
    assert downloaded.content == files[2].data

    # The logs are in the manifest container, encrypted with the job's key.
    log_names = [e["FileName"] for e in events if e["Event"] == "JobLogFileCreate"]
    assert len(log_names) == 3 and all(job_id in n for n in log_names)
    storage = migration_emulator.info["migration_api"]
    owner = BlobServiceClient(
        storage["blob_endpoint"],
        credential={"account_name": storage["account_name"], "account_key": storage["account_key"]},
        connection_verify=migration_emulator.info["ca_file"],
    ).get_container_client(meta.container_name)
    for name in log_names:
        blob = owner.get_blob_client(name)
        iv = base64.b64decode(blob.get_blob_properties().metadata["IV"])
        text = decrypt(key, iv, blob.download_blob().readall()).decode()
        if name.endswith(".wrn"):
            assert text == "warning\tFailed to ensure user 'ghost@fabrikam.com'\n"
        if name.endswith(".log"):
            assert "imported file" in text


def test_a_bad_item_is_a_job_error_and_the_others_import(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Mixed-{uuid.uuid4().hex[:6]}", target.root_id)
    good, missing, corrupt = (
        PackageFile("good.txt", b"good", folder.id),
        PackageFile("missing.txt", b"gone", folder.id),
        PackageFile("corrupt.txt", b"bits", folder.id),
    )
    package = _package(target, [good, missing, corrupt], [folder])

    def tamper(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name == f"{corrupt.id}.dat":
            upload(container, name, body, key, md5=bytes(16))
        return name in (f"{missing.id}.dat", f"{corrupt.id}.dat")

    job_id, _, _ = _submit(client, migration_emulator, token, package, tamper=tamper)
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    errors = {e["Id"]: e for e in events if e["Event"] == "JobError"}
    assert set(errors) == {missing.id, corrupt.id}
    assert errors[corrupt.id]["ObjectType"] == "File"
    assert "MD5" in errors[corrupt.id]["Message"]
    assert events[-1]["FilesCreated"] == "1" and events[-1]["TotalErrors"] == "2"
    assert set(_children(graph, target.drive_id, folder.name)) == {"good.txt"}


def _fatal(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    package: Package,
    tamper: Tamper | None = None,
) -> str:
    job_id, _, _ = _submit(client, server, token, package, tamper=tamper)
    events = wait_for_end(client, server, token, job_id, SITE)
    fatal = [e for e in events if e["Event"] == "JobFatalError"]
    assert len(fatal) == 1, [e["Event"] for e in events]
    assert events[-1]["FilesCreated"] == "0"
    return fatal[0]["Message"]


def test_bad_packages_are_fatal_errors(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    def one() -> Package:
        return _package(target, [PackageFile("x.txt", b"x", target.root_id)], [])

    wrong_source = one()
    wrong_source.source_type = "Floppy"
    assert "SourceType" in _fatal(client, migration_emulator, token, wrong_source)

    # gWebId stays right (else the call is refused); the manifest names another web.
    other_web = str(uuid.uuid4()).encode()

    def wrong_web(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        upload(container, name, body.replace(target.web_id.encode(), other_web), key)
        return True

    assert "web" in _fatal(client, migration_emulator, token, one(), wrong_web)

    def no_export_settings(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        return name == "ExportSettings.xml"

    assert "ExportSettings.xml" in _fatal(
        client, migration_emulator, token, one(), no_export_settings
    )

    def no_snapshot(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name == "Manifest.xml":
            upload(container, name, body, key, snapshot=False)
        return name == "Manifest.xml"

    assert "snapshot" in _fatal(client, migration_emulator, token, one(), no_snapshot)

    def bad_md5(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name == "SystemData.xml":
            upload(container, name, body, key, md5=bytes(16))
        return name == "SystemData.xml"

    assert "MD5" in _fatal(client, migration_emulator, token, one(), bad_md5)

    def other_key(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        upload(container, name, body, bytes(32))
        return True

    assert "decrypted" in _fatal(client, migration_emulator, token, one(), other_key)


def test_resubmitting_the_same_ids_replaces(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Again-{uuid.uuid4().hex[:6]}", target.root_id)
    first = PackageFile("doc.txt", b"version one", folder.id)
    job_id, _, _ = _submit(client, migration_emulator, token, _package(target, [first], [folder]))
    wait_for_end(client, migration_emulator, token, job_id, SITE)
    second = PackageFile(
        "doc.txt", b"version two, longer", folder.id, id=first.id, modified=1_700_000_000.0
    )
    job_id, _, _ = _submit(client, migration_emulator, token, _package(target, [second], [folder]))
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    assert "JobError" not in [e["Event"] for e in events]
    children = _children(graph, target.drive_id, folder.name)
    assert list(children) == ["doc.txt"]
    assert children["doc.txt"]["size"] == len(second.data)
    top = [
        c
        for c in graph.get(f"/drives/{target.drive_id}/root/children").json()["value"]
        if c["name"] == folder.name
    ]
    assert len(top) == 1


def test_progress_tokens_and_the_encrypted_queue(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    target: Target,
) -> None:
    r = site_call(client, migration_emulator, token, "ProvisionMigrationQueue", SITE)
    queue_uri = r.json()["d"]["ProvisionMigrationQueue"]["JobQueueUri"]
    files = [PackageFile(f"f{i}.txt", b"q" * i, target.root_id) for i in range(3)]
    job_id, key, _ = _submit(
        client, migration_emulator, token, _package(target, files, []), queue=queue_uri
    )
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    everything, last = progress(client, migration_emulator, token, job_id, "0", SITE)
    assert everything == events
    assert progress(client, migration_emulator, token, job_id, last, SITE) == ([], last)
    assert progress(client, migration_emulator, token, job_id, "0", SITE) == (everything, last)
    middle, _ = progress(client, migration_emulator, token, job_id, "2", SITE)
    assert middle == events[2:]

    queue = QueueClient.from_queue_url(
        queue_uri, connection_verify=migration_emulator.info["ca_file"]
    )
    seen = []
    for message in queue.receive_messages(max_messages=32):
        envelope = json.loads(base64.b64decode(message.content))
        assert envelope["Label"] == "Encrypted" and envelope["JobId"] == job_id
        plain = decrypt(
            key, base64.b64decode(envelope["IV"]), base64.b64decode(envelope["Content"])
        )
        seen.append(json.loads(plain))
    assert seen == events[: len(seen)] and seen


def test_a_job_that_fails_midway(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Half-{uuid.uuid4().hex[:6]}", target.root_id)
    files = [PackageFile(f"{i}.txt", b"%d" % i, folder.id) for i in range(4)]
    migration_emulator.set_faults(migration_fail_after=2)
    job_id, _, _ = _submit(client, migration_emulator, token, _package(target, files, [folder]))
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    names = [e["Event"] for e in events]
    assert "JobFatalError" in names and names[-1] == "JobEnd"
    assert events[-1]["FilesCreated"] == "2"
    assert set(_children(graph, target.drive_id, folder.name)) == {"0.txt", "1.txt"}


def test_import_rate_fault(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    target: Target,
) -> None:
    files = [PackageFile(f"r{i}.txt", b"r", target.root_id) for i in range(4)]
    migration_emulator.set_faults(migration_files_per_s=4)
    job_id, _, _ = _submit(client, migration_emulator, token, _package(target, files, []))
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    start = next(e for e in events if e["Event"] == "JobStart")["Time"]
    end = events[-1]["Time"]
    spent = (
        dt.datetime.strptime(end, "%m/%d/%Y %H:%M:%S.%f")
        - dt.datetime.strptime(start, "%m/%d/%Y %H:%M:%S.%f")
    ).total_seconds()
    assert spent >= 0.9  # four files at four per second
