"""Helpers for the migration tests against the emulator: run a round in this process or
`sharelift migrate` in a child process, read what the target holds, count live upload sessions."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from sharelift.emulator.server import EmulatorServer
from sharelift.engine import Engine, EngineConfig, RoundResult
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.pacer import Pacer
from sharelift.quickxorhash import QuickXorHash
from sharelift.source.walk import ScanOptions
from sharelift.state import open_state
from sharelift.target import parse_target, resolve_target
from support.emulator_http import graph_http

UNIT = 327_680
"""320 KiB: the upload-session fragment unit."""

Hook = Callable[[Engine], None]


def qxh(data: bytes) -> str:
    h = QuickXorHash()
    h.update(data)
    return base64.b64encode(h.digest()).decode()


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def megan(server: EmulatorServer) -> tuple[str, str]:
    """(upn, drive id) of the sample tenant's first user."""
    user = next(u for u in server.info["users"] if u["upn"].startswith("megan"))
    return str(user["upn"]), str(user["drive_id"])


async def run_engine(
    server: EmulatorServer,
    token: str,
    source: Path,
    folder: str,
    state: Path,
    *,
    hook: Hook | None = None,
    workers: int = 4,
    chunk_size: int = 2 * UNIT,
    check: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    client_attempts: int = 8,
    options: ScanOptions | None = None,
    **config: Any,
) -> RoundResult:
    """One round of the engine in this process into megan's OneDrive folder `folder`.

    `hook(engine)` runs before the round starts (to wrap the engine's DriveClient methods);
    `transport` replaces the client's network transport (to watch every exchange);
    `client_attempts` is how often the Graph client tries one request; `options` are the scan
    options (filters, rename policy). The state store is checked for consistency afterwards
    unless `check` is False.
    """
    info = server.info
    upn, _ = megan(server)
    target = f"onedrive:{upn}/{folder}"
    async with GraphClient(
        token=lambda: token,
        base_url=info["graph_url"],
        verify=info["ca_file"],
        connect=info["connect"],
        pacer=Pacer(max_concurrency=workers, base_delay=0.05, max_delay=0.5),
        transport=transport,
        max_attempts=client_attempts,
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
                options=options or ScanOptions(),
                config=EngineConfig(chunk_size=chunk_size, workers=workers, **config),
            )
            if hook is not None:
                hook(engine)
            result = await engine.run()
            if check:
                assert store.check() == []
            return result


def graph_client(server: EmulatorServer, token: str) -> httpx.Client:
    return graph_http(server.info, token)


def target_files(graph: httpx.Client, drive_id: str, folder: str) -> dict[str, tuple[int, str]]:
    """Every file below `folder` of the drive: relative path -> (size, quickXorHash)."""
    found: dict[str, tuple[int, str]] = {}

    def walk(item_id: str, prefix: str) -> None:
        url: str | None = f"/drives/{drive_id}/items/{item_id}/children?$top=1000"
        while url is not None:
            page = graph.get(url)
            page.raise_for_status()
            body = page.json()
            for child in body["value"]:
                rel = f"{prefix}{child['name']}"
                if "folder" in child:
                    walk(child["id"], rel + "/")
                else:
                    found[rel] = (child["size"], child["file"]["hashes"]["quickXorHash"])
            url = body.get("@odata.nextLink")

    top = graph.get(f"/drives/{drive_id}/root:/{folder}")
    top.raise_for_status()
    walk(top.json()["id"], "")
    return found


def expected_files(files: Mapping[str, bytes]) -> dict[str, tuple[int, str]]:
    return {rel: (len(data), qxh(data)) for rel, data in files.items()}


def download(graph: httpx.Client, drive_id: str, path: str) -> bytes:
    resp = graph.get(f"/drives/{drive_id}/root:/{path}:/content", follow_redirects=True)
    resp.raise_for_status()
    return resp.content


def live_sessions(server: EmulatorServer) -> list[str]:
    """Upload sessions the emulator still holds open (expired ones do not count)."""
    store = server.store
    assert store is not None
    sessions = store.sessions
    return [sid for sid in os.listdir(sessions.sessions_dir) if sessions.get(sid) is not None]


def migrate_command(
    server: EmulatorServer, source: Path, folder: str, state: Path, *extra: str
) -> list[str]:
    """`python -m sharelift migrate` into megan's OneDrive folder `folder`, quietly."""
    upn, _ = megan(server)
    return [
        sys.executable,
        "-m",
        "sharelift",
        "migrate",
        str(source),
        f"onedrive:{upn}/{folder}",
        "--emulator",
        str(server.data_dir),
        "--state",
        str(state),
        "--quiet",
        *extra,
    ]


def run_migrate(
    server: EmulatorServer, source: Path, folder: str, state: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        migrate_command(server, source, folder, state, *extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
