"""The Migration API's faults on demand and its queue limit, against the emulator and Azurite."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from sharelift.emulator.server import EmulatorServer
from support.migration import sharepoint_token, site_call, wait_for_end

pytestmark = pytest.mark.slow


def _job(client: httpx.Client, server: EmulatorServer, token: str) -> httpx.Response:
    r = site_call(client, server, token, "ProvisionMigrationContainers")
    info = r.json()["d"]["ProvisionMigrationContainers"]
    assert server.store is not None
    site = server.store.tenant.site_by_path(server.store.tenant.hostname, "/")
    assert site is not None
    return site_call(
        client,
        server,
        token,
        "CreateMigrationJobEncrypted",
        body={
            "gWebId": site.id.split(",")[2],
            "azureContainerSourceUri": info["DataContainerUri"],
            "azureContainerManifestUri": info["MetadataContainerUri"],
            "options": {"AES256CBCKey": info["EncryptionKey"]},
        },
    )


def test_a_postponed_job_says_so_then_starts(
    migration_emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    client = http_client(migration_emulator)
    token = sharepoint_token(migration_emulator)
    migration_emulator.set_faults(migration_postpone_s=0.5)
    job_id = _job(client, migration_emulator, token).json()["d"]["CreateMigrationJobEncrypted"]
    events = wait_for_end(client, migration_emulator, token, job_id)
    names = [e["Event"] for e in events]
    assert names[:3] == ["JobQueued", "JobPostponed", "JobStart"]
    assert events[1]["NextPickupTime"] and events[1]["JobsInQueue"]


def test_queued_jobs_are_limited_per_site_collection(
    emulator_factory: Callable[..., EmulatorServer], http_client: Callable[..., httpx.Client]
) -> None:
    # No import thread: jobs stay queued.
    server = emulator_factory(migration_queue_limit=2, migration_import_threads=0)
    assert server.info["migration_api"] == {"mode": "lazy", "running": False}
    client = http_client(server)
    token = sharepoint_token(server)
    ids = [_job(client, server, token).json()["d"]["CreateMigrationJobEncrypted"] for _ in range(2)]
    for job_id in ids:
        status = site_call(
            client, server, token, "GetMigrationJobStatus", body={"MigrationJobId": job_id}
        )
        assert status.json()["d"]["GetMigrationJobStatus"] == 2  # Queued
    # Azurite started with the first call; emulator.json now says where it is.
    written = json.loads((server.data_dir / "emulator.json").read_text())
    assert written["migration_api"]["running"] is True
    assert written["migration_api"]["blob_endpoint"].startswith("https://127.0.0.1:")
    third = _job(client, server, token)
    assert third.status_code == 503
    assert third.headers["Retry-After"] == "60"
    assert "queued" in third.json()["error"]["message"]["value"]
