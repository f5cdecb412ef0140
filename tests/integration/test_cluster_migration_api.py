"""The Migration API mover on a cluster, for real: redis-server, PostgreSQL, the emulator with
Azurite and three `sharelift worker` processes; a tree carved into several units, each of which
packages its files, submits them and follows its own import jobs to their end.

One worker is SIGKILLed in the middle of a unit, once that unit has a package the service
accepted and is still importing: another worker takes the unit over from the state store (the
package's key is kept there), follows that job without submitting it again, and sends what is
left. The target must be exact (hashes through Graph), every unit must end once, no package
may be submitted twice (the emulator's request log and job records), no blob stored twice
(Azurite's snapshots), and no key may be left in the store. A second run sends nothing.
"""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import BlobServiceClient
from migrate_helpers import expected_files, graph_client, megan, target_files, write_tree

from sharelift.emulator.server import EmulatorServer
from sharelift.state import MigrationPackageRecord, PackageStatus, StateStore, open_state
from support.cluster import Worker, cluster_progress, follow, wait_for

pytestmark = pytest.mark.slow

LEASE = 4.0
FOLDER = "ClusterMA"


def tree() -> dict[str, bytes]:
    rng = random.Random(20261205)
    return {
        f"dept{i % 4}/team{i % 3}/f{i:03}.txt": rng.randbytes(rng.randint(1, 2500))
        for i in range(240)
    } | {f"top{i}.txt": rng.randbytes(100 + i) for i in range(6)}


def packages(store: StateStore) -> list[MigrationPackageRecord]:
    return [p for job in store.jobs() for p in store.migration_packages(job.id)]


def following(store: StateStore, workers: list[Worker]) -> tuple[Worker, int] | None:
    """A worker whose running unit has a package the service accepted and is importing."""
    accepted = {
        p.unit_id for p in packages(store) if p.status is PackageStatus.SUBMITTED and p.unit_id
    }
    for row in store.workers():
        if row.status == "busy" and row.unit_id in accepted:
            worker = next((w for w in workers if w.name == row.name), None)
            if worker is not None:
                return worker, row.unit_id
    return None


def test_a_cluster_migrates_through_the_migration_api_and_a_dead_workers_unit_goes_on(
    emulator_factory: Callable[..., EmulatorServer],
    app_token: Callable[..., str],
    cluster_state: str,
    broker: str,
    tmp_path: Path,
) -> None:
    server = emulator_factory(migration_api="start")
    upn, drive = megan(server)
    files = tree()
    write_tree(tmp_path / "share", files)
    logs = tmp_path / "logs"
    logs.mkdir()
    server.set_faults(migration_files_per_s=15)  # imports take seconds: a kill lands in one
    workers = [
        Worker(i, broker, cluster_state, server.data_dir, logs, lease=LEASE,
               extra=("--auth", "certificate"))
        for i in range(3)
    ]  # fmt: skip
    command = [
        sys.executable, "-m", "sharelift", "migrate", str(tmp_path / "share"),
        f"onedrive:{upn}/{FOLDER}", "--broker", broker, "--state", cluster_state, "--quiet",
        "--via", "migration-api", "--migration-poll", "0.2", "--package-files", "12",
        "--unit-files", "40", "--workers", "4", "--report", str(tmp_path / "reports"),
    ]  # fmt: skip
    out_file, err_file = tmp_path / "migrate.out", tmp_path / "migrate.err"
    with out_file.open("w") as out_fh, err_file.open("w") as err_fh:
        migrate = subprocess.Popen(command, stdout=out_fh, stderr=err_fh, text=True)
    try:
        with open_state(cluster_state, readonly=True) as store:

            def moving() -> object:
                return cluster_progress(store), [(p.id, p.status) for p in packages(store)]

            victim, killed_unit = wait_for(
                lambda: following(store, workers),
                "a unit following its import job",
                progress=moving,
            )
            victim.kill()
            accepted = {
                p.id: p.migration_job_id
                for p in packages(store)
                if p.unit_id == killed_unit and p.status is PackageStatus.SUBMITTED
            }
            server.set_faults(migration_files_per_s=60)
        follow(migrate, cluster_state, "the run to end")
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()
        for worker in workers:
            worker.stop()
    out, err = out_file.read_text(), err_file.read_text()
    server.set_faults(migration_files_per_s=0)
    assert migrate.returncode == 0, (out, err, [w.lines()[-20:] for w in workers])
    assert "1 jobs: 1 completed" in out, out

    with (tmp_path / "reports" / "job-1" / "round-1" / "MigrationJobs.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) >= 2

    # Exact: every file at the target with the hash of its bytes, and nothing else.
    with graph_client(server, app_token(server)) as graph:
        assert target_files(graph, drive, FOLDER) == expected_files(files)

    with open_state(cluster_state, readonly=True) as store:
        assert store.check() == []
        units = store.units()
        made = packages(store)
        (job,) = store.jobs()
        assert [r.status for r in store.rounds(job.id)] == ["completed"]
        keys_left = [p.id for p in made if store.package_key(p.id) is not None]
    # Carved into several units, each of which made packages of its own.
    work_units = [u for u in units if u.kind in ("job", "tree")]
    assert len(work_units) >= 4, [(u.kind, u.files_total) for u in units]
    assert {p.unit_id for p in made if p.unit_id is not None} <= {u.id for u in work_units}
    assert len({p.unit_id for p in made}) >= 3
    assert all(p.unit_id is not None and p.key_file == "" for p in made)
    # Every package settled, its key erased from the store.
    assert {p.status for p in made} <= {PackageStatus.CLOSED, PackageStatus.FAILED}
    assert keys_left == []
    # The dead worker's unit was taken over once, by another worker, and ended there; the
    # jobs it had submitted were followed to their end under the same job ids.
    taken_over = next(u for u in units if u.id == killed_unit)
    assert taken_over.attempts >= 2 and taken_over.owner != victim.name
    assert accepted
    after = {p.id: p for p in made}
    assert {i: after[i].migration_job_id for i in accepted} == accepted
    assert {after[i].status for i in accepted} == {PackageStatus.CLOSED}
    ended = Counter(
        int(m[1])
        for w in workers
        for line in w.lines()
        if (m := re.match(r"unit (\d+) \(\w+ [^)]*\): done", line))
    )
    assert ended == Counter({u.id: 1 for u in units}), ended

    # No package imported twice: every job the service accepted is on containers of its
    # own, those of one package. A package the dead worker was submitting when it died (the
    # service took it, the answer was lost) is submitted once more by the new owner, and
    # refused: provided containers serve one job (docs/migration-api.md).
    server.stats()
    text = (server.data_dir / "requests.jsonl").read_text()
    submissions = [
        r for r in map(json.loads, text.splitlines()) if "CreateMigrationJob" in r["path"]
    ]
    jobs_dir = server.data_dir / "migration" / "jobs"
    service_jobs = [json.loads(p.read_text()) for p in sorted(jobs_dir.glob("*.json"))]
    assert len([r for r in submissions if r["status"] in (200, 201)]) == len(service_jobs)
    sources = Counter(urlsplit(str(j["source"])).path.rstrip("/") for j in service_jobs)
    assert all(n == 1 for n in sources.values()), sources
    assert set(sources) <= {urlsplit(p.data_uri).path.rstrip("/") for p in made}
    recorded = {p.migration_job_id.lower() for p in made if p.migration_job_id}
    assert recorded <= {str(j["id"]).lower() for j in service_jobs}
    unanswered = [p for p in made if "submitted by an earlier run" in (p.message or "")]
    assert len(submissions) == len(service_jobs) + len(unanswered)

    # No blob stored twice: each file's blob is in one package's container, and every
    # snapshot of it holds the same bytes (an upload encrypts with a fresh IV: a second one
    # would differ). A blob the dead worker stored but could not record is found by the new
    # owner and snapshotted again, not uploaded again.
    azurite = server.info["migration_api"]
    storage = (
        f"DefaultEndpointsProtocol=https;AccountName={azurite['account_name']};"
        f"AccountKey={azurite['account_key']};BlobEndpoint={azurite['blob_endpoint']};"
    )
    blobs: dict[str, list[tuple[str | None, bytes]]] = {}
    with BlobServiceClient.from_connection_string(
        storage, connection_verify=server.info["ca_file"]
    ) as service:
        for package in made:
            container = urlsplit(package.data_uri).path.rstrip("/").rsplit("/", 1)[-1]
            for item in service.get_container_client(container).list_blobs(include=["snapshots"]):
                md5 = bytes(item.content_settings.content_md5 or b"")
                blobs.setdefault(item.name, []).append((item.snapshot, md5))
    assert len(blobs) == len(files)
    for name, versions in blobs.items():
        assert len([v for v in versions if v[0] is None]) == 1, name  # one container
        assert len({md5 for _, md5 in versions}) == 1, name  # one upload

    # A second run finds every file unchanged: no package, no job, nothing uploaded.
    worker = Worker(3, broker, cluster_state, server.data_dir, logs, lease=LEASE,
                    extra=("--auth", "certificate"))  # fmt: skip
    with (tmp_path / "again.out").open("w") as out_fh:
        rerun = subprocess.Popen(command, stdout=out_fh, stderr=subprocess.STDOUT, text=True)
    try:
        assert follow(rerun, cluster_state, "the second run to end") == 0
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()
        worker.stop()
    assert "1 jobs: 1 completed" in (tmp_path / "again.out").read_text()
    with open_state(cluster_state, readonly=True) as store:
        assert len(packages(store)) == len(made)
        (job,) = store.jobs()
        assert [r.status for r in store.rounds(job.id)] == ["completed", "completed"]
    assert len(list(jobs_dir.glob("*.json"))) == len(service_jobs)
