"""The Migration API's REST calls on the emulator, over HTTPS, with Azurite behind them."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from sharelift.emulator.server import EmulatorServer
from support.migration import sharepoint_token, site_call, upload, wait_for_end

pytestmark = pytest.mark.slow


@pytest.fixture
def client(
    migration_emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> httpx.Client:
    return http_client(migration_emulator)


@pytest.fixture(scope="module")
def token(migration_emulator: EmulatorServer) -> str:
    return sharepoint_token(migration_emulator)


def _web_id(server: EmulatorServer, path: str = "/") -> str:
    assert server.store is not None
    site = server.store.tenant.site_by_path(server.store.tenant.hostname, path)
    assert site is not None
    return site.id.split(",")[2]


def _provision(client: httpx.Client, server: EmulatorServer, token: str) -> dict[str, str]:
    r = site_call(client, server, token, "ProvisionMigrationContainers")
    assert r.status_code == 200, r.text
    info: dict[str, str] = r.json()["d"]["ProvisionMigrationContainers"]
    return info


def _own_containers(
    server: EmulatorServer, content_perm: str = "rl", manifest_perm: str = "rlw"
) -> Iterator[str]:
    storage = server.info["migration_api"]
    service = BlobServiceClient(
        storage["blob_endpoint"],
        credential={"account_name": storage["account_name"], "account_key": storage["account_key"]},
        connection_verify=server.info["ca_file"],
    )
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    for perm in (content_perm, manifest_perm):
        name = f"own-{uuid.uuid4().hex}"
        service.create_container(name)
        sas = generate_container_sas(
            storage["account_name"],
            name,
            account_key=storage["account_key"],
            permission=ContainerSasPermissions.from_string(perm),
            expiry=expiry,
            protocol="https",
        )
        yield f"{storage['blob_endpoint']}/{name}?{sas}"


def test_provision_containers_answers_sas_uris_and_a_key(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    info = _provision(client, migration_emulator, token)
    assert info["__metadata"]["type"] == "SP.ProvisionedMigrationContainersInfo"
    assert len(base64.b64decode(info["EncryptionKey"])) == 32
    data, meta = info["DataContainerUri"], info["MetadataContainerUri"]
    assert urlsplit(data).path != urlsplit(meta).path
    for uri in (data, meta):
        query = parse_qs(urlsplit(uri).query)
        assert query["sp"] == ["rw"]  # Read and Write only, no List (migration-azure.md)
        assert query["spr"] == ["https"]
        expiry = dt.datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
        lifetime = expiry - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=2, hours=23) < lifetime <= dt.timedelta(days=3)
    # The nometadata form answers the object itself.
    r = site_call(client, migration_emulator, token, "ProvisionMigrationContainers", verbose=False)
    assert set(r.json()) == {"DataContainerUri", "EncryptionKey", "MetadataContainerUri"}


def test_provided_container_sas_writes_but_cannot_list(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    info = _provision(client, migration_emulator, token)
    ca = migration_emulator.info["ca_file"]
    container = ContainerClient.from_container_url(info["DataContainerUri"], connection_verify=ca)
    upload(container, "a.dat", b"payload", base64.b64decode(info["EncryptionKey"]))
    with pytest.raises(HttpResponseError) as listing:
        list(container.list_blobs())
    assert listing.value.status_code == 403


def test_forged_and_expired_sas_fail_as_azure_storage_fails_them(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    info = _provision(client, migration_emulator, token)
    ca = migration_emulator.info["ca_file"]
    uri = info["DataContainerUri"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
    query["sig"] = base64.b64encode(secrets.token_bytes(32)).decode()
    forged_client = ContainerClient.from_container_url(
        uri.split("?")[0] + "?" + urlencode(query), connection_verify=ca
    )
    # Azure Storage answers 403 to a SAS whose signature does not match (Azurite's code is
    # AuthorizationFailure, Azure's AuthenticationFailed).
    with pytest.raises(HttpResponseError) as refused:
        forged_client.upload_blob("x.dat", b"x")
    assert refused.value.status_code == 403

    storage = migration_emulator.info["migration_api"]
    name = urlsplit(uri).path.rsplit("/", 1)[1]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    expired_sas = generate_container_sas(
        storage["account_name"],
        name,
        account_key=storage["account_key"],
        permission=ContainerSasPermissions(read=True, write=True),
        start=past - dt.timedelta(hours=1),
        expiry=past,
        protocol="https",
    )
    expired = ContainerClient.from_container_url(
        f"{storage['blob_endpoint']}/{name}?{expired_sas}", connection_verify=ca
    )
    with pytest.raises(HttpResponseError) as stale:
        expired.upload_blob("y.dat", b"y")
    assert stale.value.status_code == 403
    assert stale.value.error_code == refused.value.error_code == "AuthorizationFailure"


def test_provision_queue(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    r = site_call(client, migration_emulator, token, "ProvisionMigrationQueue", verbose=False)
    assert r.status_code == 200, r.text
    query = parse_qs(urlsplit(r.json()["JobQueueUri"]).query)
    assert query["spr"] == ["https"]
    assert set(query["sp"][0]) >= {"a", "r", "u"}


def _create(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    body: dict[str, object],
    encrypted: bool = True,
    site: str = "",
) -> httpx.Response:
    method = "CreateMigrationJobEncrypted" if encrypted else "CreateMigrationJob"
    return site_call(client, server, token, method, site, body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gWebId": str(uuid.uuid4())}, "gWebId"),
        ({"azureContainerManifestUri": None}, "azureContainerManifestUri"),
        ({"options": {"AES256CBCKey": "c2hvcnQ="}}, "AES256CBCKey"),
        ({"same": True}, "can't be the same"),
    ],
)
def test_create_job_refuses_bad_arguments(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    change: dict[str, object],
    message: str,
) -> None:
    info = _provision(client, migration_emulator, token)
    body: dict[str, object] = {
        "gWebId": _web_id(migration_emulator),
        "azureContainerSourceUri": info["DataContainerUri"],
        "azureContainerManifestUri": info["MetadataContainerUri"],
        "azureQueueReportUri": None,
        "options": {"AES256CBCKey": info["EncryptionKey"]},
    }
    if change.pop("same", False):
        body["azureContainerManifestUri"] = info["DataContainerUri"]
    body |= change
    if body["azureContainerManifestUri"] is None:
        del body["azureContainerManifestUri"]
    r = _create(client, migration_emulator, token, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]["value"]


def test_unencrypted_job_from_provided_containers_is_refused(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    info = _provision(client, migration_emulator, token)
    r = _create(
        client,
        migration_emulator,
        token,
        {
            "gWebId": _web_id(migration_emulator),
            "azureContainerSourceUri": info["DataContainerUri"],
            "azureContainerManifestUri": info["MetadataContainerUri"],
        },
        encrypted=False,
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "-2147024809, System.ArgumentException"
    assert "encrypted" in r.json()["error"]["message"]["value"]


@pytest.mark.parametrize(
    ("content", "manifest", "refused"),
    [
        ("rl", "rlw", None),
        ("rwl", "rlw", "azureContainerSourceUri"),
        ("r", "rlw", "azureContainerSourceUri"),
        ("rl", "rl", "azureContainerManifestUri"),
        ("rl", "rlwd", "azureContainerManifestUri"),
    ],
)
def test_own_containers_need_exactly_the_documented_permissions(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    content: str,
    manifest: str,
    refused: str | None,
) -> None:
    source, meta = _own_containers(migration_emulator, content, manifest)
    r = _create(
        client,
        migration_emulator,
        token,
        {
            "gWebId": _web_id(migration_emulator),
            "azureContainerSourceUri": source,
            "azureContainerManifestUri": meta,
            "azureQueueReportUri": None,
        },
        encrypted=False,
    )
    if refused is None:
        assert r.status_code == 200, r.text
        uuid.UUID(r.json()["d"]["CreateMigrationJob"])
    else:
        assert r.status_code == 400, r.text
        assert refused in r.json()["error"]["message"]["value"]


def test_a_provided_container_serves_one_job(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    info = _provision(client, migration_emulator, token)
    body = {
        "gWebId": _web_id(migration_emulator),
        "azureContainerSourceUri": info["DataContainerUri"],
        "azureContainerManifestUri": info["MetadataContainerUri"],
        "options": {"AES256CBCKey": info["EncryptionKey"]},
    }
    first = _create(client, migration_emulator, token, body)
    assert first.status_code == 200, first.text
    again = _create(client, migration_emulator, token, body)
    assert again.status_code == 400
    assert "already served a job" in again.json()["error"]["message"]["value"]


def test_an_empty_package_is_a_fatal_error_and_the_job_ends(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    info = _provision(client, migration_emulator, token)
    r = _create(
        client,
        migration_emulator,
        token,
        {
            "gWebId": _web_id(migration_emulator),
            "azureContainerSourceUri": info["DataContainerUri"],
            "azureContainerManifestUri": info["MetadataContainerUri"],
            "options": {"AES256CBCKey": info["EncryptionKey"]},
        },
    )
    job_id = r.json()["d"]["CreateMigrationJobEncrypted"]
    events = wait_for_end(client, migration_emulator, token, job_id)
    names = [e["Event"] for e in events]
    assert names[:2] == ["JobQueued", "JobStart"]
    assert names[2:] == ["JobFatalError", *["JobLogFileCreate"] * 3, "JobEnd"]
    fatal = events[2]
    assert "ExportSettings.xml" in fatal["Message"]
    assert fatal["ObjectType"] == fatal["Url"] == fatal["Id"] == ""
    for event in events:
        assert event["JobId"] == job_id
        assert all(isinstance(v, str) for v in event.values())
        dt.datetime.strptime(event["Time"], "%m/%d/%Y %H:%M:%S.%f")
    status = site_call(
        client, migration_emulator, token, "GetMigrationJobStatus", body={"MigrationJobId": job_id}
    )
    assert status.json() == {"d": {"GetMigrationJobStatus": 0}}


def test_progress_of_an_unknown_job_is_a_500_job_not_found(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    r = client.get(
        f"{migration_emulator.base_url}/_api/site/GetMigrationJobProgress("
        f"jobId='{uuid.uuid4()}',nextToken=0)",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json;odata=verbose"},
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "-2147213145, Microsoft.SharePoint.SPException"


def test_tokens_for_another_host_or_users_are_refused(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    user_token: Callable[..., str],
) -> None:
    my_token = sharepoint_token(migration_emulator, "my")
    r = site_call(client, migration_emulator, my_token, "ProvisionMigrationQueue")
    assert r.status_code == 401
    r = site_call(client, migration_emulator, token, "ProvisionMigrationQueue", "/personal/x")
    assert r.status_code == 401
    r = site_call(
        client, migration_emulator, user_token(migration_emulator), "ProvisionMigrationQueue"
    )
    assert r.status_code == 401  # a Graph token: wrong audience
    r = site_call(client, migration_emulator, token, "ProvisionMigrationQueue", "/sites/Nope")
    assert r.status_code == 404


def test_throttled_calls_carry_retry_after(
    migration_emulator: EmulatorServer, client: httpx.Client, token: str
) -> None:
    for status in (429, 503):
        migration_emulator.set_faults(migration_throttle_rate=1, migration_throttle_status=status)
        r = site_call(client, migration_emulator, token, "ProvisionMigrationQueue")
        assert r.status_code == status
        assert r.headers["Retry-After"] == "1"
    migration_emulator.reset_faults()
    assert (
        site_call(client, migration_emulator, token, "ProvisionMigrationQueue").status_code == 200
    )
