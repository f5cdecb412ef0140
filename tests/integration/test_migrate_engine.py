"""The migration engine against the emulator: real sockets, TLS, HTTP/2, MSAL tokens."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sharelift.emulator.server import EmulatorServer
from sharelift.engine import Engine, EngineConfig, RoundResult
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.pacer import Pacer
from sharelift.quickxorhash import QuickXorHash
from sharelift.report import write_round_reports
from sharelift.source.walk import ScanOptions
from sharelift.state import open_state
from sharelift.target import parse_target, resolve_target

CHUNK = 327_680 * 2


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "readme.txt": b"hello\n",
        "empty.dat": b"",
        "docs/Bericht ü.docx": os.urandom(5000),
        "docs/deep/er/leaf.bin": os.urandom(100),
        "docs/a:b.txt": b"colon",  # renamed to a_b.txt
        "big.bin": os.urandom(CHUNK * 2 + 12345),  # three fragments
        "photos/IMG 0001.JPG": os.urandom(70_000),
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty-folder").mkdir()
    return files


async def run_round(
    server: EmulatorServer,
    token: str,
    source: Path,
    target: str,
    state: Path,
    **config: Any,
) -> RoundResult:
    info = server.info
    async with GraphClient(
        token=lambda: token,
        base_url=info["graph_url"],
        verify=info["ca_file"],
        connect=info["connect"],
        pacer=Pacer(max_concurrency=8),
    ) as client:
        resolved = await resolve_target(client, parse_target(target))
        with open_state(state) as store:
            job = store.ensure_job(f"{source}|{target}", str(source), target)
            engine = Engine(
                drive=DriveClient(client, resolved.drive_id),
                store=store,
                job=job,
                source=str(source),
                target=resolved,
                options=ScanOptions(),
                config=EngineConfig(chunk_size=CHUNK, workers=8, **config),
            )
            result = await engine.run()
            assert store.check() == []
            return result


def download(graph: httpx.Client, drive_id: str, path: str) -> bytes:
    resp = graph.get(f"/drives/{drive_id}/root:/{path}:/content", follow_redirects=True)
    resp.raise_for_status()
    return resp.content


def megan_drive(server: EmulatorServer) -> str:
    return next(u["drive_id"] for u in server.info["users"] if u["upn"].startswith("megan"))


@pytest.fixture
def token(emulator: EmulatorServer, app_token: Callable[..., str]) -> str:
    return app_token(emulator)


def test_migrate_then_rerun_is_incremental(
    emulator: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "share"
    files = make_tree(src)
    target = f"onedrive:megan@{emulator.info['domain']}/Migrated-1"
    state = tmp_path / "state.db"

    first = asyncio.run(run_round(emulator, token, src, target, state))
    assert first.status == "completed"
    assert (first.uploaded, first.failed) == (len(files), 0)

    drive = megan_drive(emulator)
    for rel, data in files.items():
        rel_target = rel.replace("a:b", "a_b")
        got = download(graph, drive, f"Migrated-1/{rel_target}")
        assert got == data, rel
    meta = graph.get(f"/drives/{drive}/root:/Migrated-1/big.bin").json()
    h = QuickXorHash()
    h.update(files["big.bin"])
    assert meta["file"]["hashes"]["quickXorHash"] == base64.b64encode(h.digest()).decode()
    # Times were given at upload: no second version was made.
    mtime = (src / "big.bin").stat().st_mtime
    assert meta["fileSystemInfo"]["lastModifiedDateTime"].startswith(
        __import__("datetime")
        .datetime.fromtimestamp(mtime, __import__("datetime").UTC)
        .strftime("%Y-%m-%dT%H:%M:%S")
    )
    versions = graph.get(f"/drives/{drive}/items/{meta['id']}/versions").json()["value"]
    assert len(versions) == 1
    assert graph.get(f"/drives/{drive}/root:/Migrated-1/empty-folder").status_code == 200

    emulator.reset_stats()
    second = asyncio.run(run_round(emulator, token, src, target, state))
    assert (second.uploaded, second.unchanged, second.failed) == (0, len(files), 0)
    stats = emulator.stats()
    # Only the target's resolution (user's drive, the folder) — nothing per file.
    assert stats["requests"] <= 3, stats


def test_changed_file_replaces_without_duplicates(
    emulator: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "share"
    make_tree(src)
    target = f"onedrive:megan@{emulator.info['domain']}/Migrated-2"
    state = tmp_path / "state.db"
    asyncio.run(run_round(emulator, token, src, target, state))
    (src / "readme.txt").write_bytes(b"changed\n")
    os.utime(src / "readme.txt", (2_000_000_000, 2_000_000_000))
    again = asyncio.run(run_round(emulator, token, src, target, state))
    assert again.uploaded == 1
    drive = megan_drive(emulator)
    assert download(graph, drive, "Migrated-2/readme.txt") == b"changed\n"
    names = [
        c["name"] for c in graph.get(f"/drives/{drive}/root:/Migrated-2:/children").json()["value"]
    ]
    assert sorted(names) == sorted(
        ["readme.txt", "empty.dat", "docs", "big.bin", "photos", "empty-folder"]
    )


def test_lost_state_adopts_what_is_already_there(
    emulator: EmulatorServer, token: str, tmp_path: Path
) -> None:
    src = tmp_path / "share"
    files = make_tree(src)
    target = f"onedrive:megan@{emulator.info['domain']}/Migrated-3"
    asyncio.run(run_round(emulator, token, src, target, tmp_path / "a.db"))
    # A new state store (lost, or a second machine): nothing is uploaded again.
    emulator.reset_stats()
    fresh = asyncio.run(run_round(emulator, token, src, target, tmp_path / "b.db"))
    assert (fresh.uploaded, fresh.adopted, fresh.failed) == (0, len(files), 0)
    assert emulator.stats()["bytes_in"] < 20_000


def test_mirror_deletes_what_the_source_lost(
    emulator: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "share"
    make_tree(src)
    target = f"onedrive:megan@{emulator.info['domain']}/Migrated-4"
    state = tmp_path / "s.db"
    asyncio.run(run_round(emulator, token, src, target, state))
    (src / "readme.txt").unlink()
    for p in sorted((src / "docs").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (src / "docs").rmdir()
    result = asyncio.run(run_round(emulator, token, src, target, state, mirror=True))
    assert result.deleted == 2  # readme.txt, and docs/ with everything in it
    drive = megan_drive(emulator)
    assert graph.get(f"/drives/{drive}/root:/Migrated-4/docs").status_code == 404
    assert graph.get(f"/drives/{drive}/root:/Migrated-4/big.bin").status_code == 200


def test_verify_target_restores_deleted_files(
    emulator: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "share"
    files = make_tree(src)
    target = f"onedrive:megan@{emulator.info['domain']}/Migrated-5"
    state = tmp_path / "s.db"
    asyncio.run(run_round(emulator, token, src, target, state))
    drive = megan_drive(emulator)
    item = graph.get(f"/drives/{drive}/root:/Migrated-5/photos/IMG 0001.JPG").json()
    assert graph.delete(f"/drives/{drive}/items/{item['id']}").status_code == 204
    result = asyncio.run(run_round(emulator, token, src, target, state, verify_target=True))
    assert result.uploaded == 1
    assert download(graph, drive, "Migrated-5/photos/IMG 0001.JPG") == files["photos/IMG 0001.JPG"]


def test_a_folder_that_cannot_be_created_fails_its_subtree_without_hanging(
    emulator: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "share"
    make_tree(src)
    drive = megan_drive(emulator)
    # A *file* named "docs" already sits where the source folder docs/ must go.
    put = graph.put(f"/drives/{drive}/root:/Migrated-6/docs:/content", content=b"in the way")
    assert put.status_code in (200, 201)
    target = f"onedrive:megan@{emulator.info['domain']}/Migrated-6"
    state = tmp_path / "s.db"
    result = asyncio.run(
        asyncio.wait_for(run_round(emulator, token, src, target, state), timeout=60)
    )
    assert result.status == "completed"
    with open_state(state) as store:
        job = store.jobs()[0]
        failed = {i.display_path: i.error_code for i in store.items(job.id, "failed")}
    # docs/ itself, and everything under it, including the nested folder's own children.
    assert failed["docs/deep/er/leaf.bin"] == "PARENT_NOT_CREATED"
    assert failed["docs/Bericht ü.docx"] == "PARENT_NOT_CREATED"
    assert "docs" in failed
    assert download(graph, drive, "Migrated-6/big.bin") == (src / "big.bin").read_bytes()


@pytest.mark.slow
def test_rerun_finds_the_few_changes_among_many_unchanged_files(
    emulator: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "share"
    old = 1_600_000_000
    files = {f"f{d}/file-{n:03d}.bin": os.urandom(100 + n) for d in range(3) for n in range(40)}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
        os.utime(src / rel, (old, old))
    target = f"onedrive:megan@{emulator.info['domain']}/Migrated-7"
    state = tmp_path / "s.db"
    first = asyncio.run(run_round(emulator, token, src, target, state))
    assert (first.uploaded, first.failed) == (120, 0)

    # f0: one file grows, one is deleted. f1: same size, new bytes and time; another only
    # touched. f2: a new file (its known items all unchanged). f3: a new folder.
    (src / "f0/file-000.bin").write_bytes(b"grown" * 100)
    (src / "f0/file-003.bin").unlink()
    (src / "f1/file-001.bin").write_bytes(os.urandom(101))
    os.utime(src / "f1/file-001.bin", (old + 100, old + 100))
    os.utime(src / "f1/file-002.bin", (old + 100, old + 100))
    (src / "f2/new.bin").write_bytes(b"new")
    (src / "f3").mkdir()
    (src / "f3/newer.bin").write_bytes(b"newer")
    emulator.reset_stats()
    second = asyncio.run(run_round(emulator, token, src, target, state))
    assert (second.uploaded, second.unchanged, second.failed) == (5, 116, 0)
    assert (
        emulator.stats()["requests"] < 40
    )  # the 5 uploads and a folder, nothing per unchanged file

    drive = megan_drive(emulator)
    assert download(graph, drive, "Migrated-7/f0/file-000.bin") == b"grown" * 100
    assert (
        download(graph, drive, "Migrated-7/f1/file-001.bin")
        == (src / "f1/file-001.bin").read_bytes()
    )
    assert download(graph, drive, "Migrated-7/f3/newer.bin") == b"newer"
    # Without --mirror a file deleted at the source stays at the target.
    assert graph.get(f"/drives/{drive}/root:/Migrated-7/f0/file-003.bin").status_code == 200
    with open_state(state) as store:
        job = store.jobs()[0]
        rnd = store.rounds(job.id)[-1]
        # Every item but the deleted one was seen by the second round's walk.
        assert [i.path for i in store.unseen_since(job.id, rnd.id)] == [b"f0/file-003.bin"]
        reports, summary = write_round_reports(store, job, rnd, tmp_path / "reports")
        listed = [i.display_path for i in store.round_items(job.id, rnd.id)]
    assert listed == [
        "f0/file-000.bin",
        "f1/file-001.bin",
        "f1/file-002.bin",
        "f2/new.bin",
        "f3",
        "f3/newer.bin",
    ]
    assert reports.items.read_text(encoding="utf-8-sig").count("\n") == 1 + len(listed)
    assert (
        summary.migrated_items,
        summary.unchanged_items,
        summary.skipped_items,
        summary.total_scanned_items,
    ) == (
        6,
        116 + 3,  # the unchanged files and the three folders seen again
        0,
        6 + 116 + 3,
    )

    third = asyncio.run(run_round(emulator, token, src, target, state, mirror=True))
    assert (third.uploaded, third.unchanged, third.deleted) == (0, 121, 1)
    assert graph.get(f"/drives/{drive}/root:/Migrated-7/f0/file-003.bin").status_code == 404
