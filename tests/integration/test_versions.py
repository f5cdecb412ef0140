"""Old versions at the target: removed after a replacement (`remove_old_versions`), and under a
whole folder by `sharelift versions prune` (dry run, resumable, paced through the client)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from migrate_helpers import graph_client, megan, run_engine, write_tree

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer
from sharelift.graph.client import GraphClient
from sharelift.graph.pacer import Pacer
from sharelift.prune import prune_target
from sharelift.state import open_state
from sharelift.target import parse_target


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


@pytest.fixture
def token(server: EmulatorServer, app_token: Callable[..., str]) -> str:
    return app_token(server)


@pytest.fixture
def graph(server: EmulatorServer, token: str) -> Iterator[httpx.Client]:
    with graph_client(server, token) as client:
        yield client


def versions(graph: httpx.Client, drive: str, path: str) -> list[str]:
    item = graph.get(f"/drives/{drive}/root:/{path}").json()
    body = graph.get(f"/drives/{drive}/items/{item['id']}/versions").json()
    return [v["id"] for v in body["value"]]


def put_versions(graph: httpx.Client, drive: str, path: str, count: int) -> None:
    for n in range(count):
        done = graph.put(f"/drives/{drive}/root:/{path}:/content", content=f"v{n}".encode() * 99)
        assert done.status_code in (200, 201), done.text


def test_the_emulator_deletes_older_versions_only(
    graph: httpx.Client, server: EmulatorServer
) -> None:
    _, drive = megan(server)
    put_versions(graph, drive, "V/one.txt", 3)
    item = graph.get(f"/drives/{drive}/root:/V/one.txt").json()
    base = f"/drives/{drive}/items/{item['id']}/versions"
    assert [v["id"] for v in graph.get(base).json()["value"]] == ["3.0", "2.0", "1.0"]
    assert graph.delete(f"{base}/1.0").status_code == 204
    assert graph.delete(f"{base}/1.0").status_code == 404
    assert graph.delete(f"{base}/3.0").status_code == 400  # the current one
    assert [v["id"] for v in graph.get(base).json()["value"]] == ["3.0", "2.0"]


def test_a_replaced_file_keeps_only_the_version_written(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"a.txt": b"first", "b.txt": b"first"})
    state = tmp_path / "s.db"
    asyncio.run(run_engine(server, token, src, "Repl", state))
    write_tree(src, {"a.txt": b"second, longer", "b.txt": b"second, longer"})
    result = asyncio.run(run_engine(server, token, src, "Repl", state, remove_old_versions=True))
    assert (result.status, result.uploaded) == ("completed", 2)
    _, drive = megan(server)
    assert versions(graph, drive, "Repl/a.txt") == ["2.0"]
    assert versions(graph, drive, "Repl/b.txt") == ["2.0"]
    with open_state(state) as store:  # nothing left marked for the next run
        assert store.prunes_pending(store.jobs()[0].id) == []
    write_tree(src, {"a.txt": b"third, longer still"})
    asyncio.run(run_engine(server, token, src, "Repl", state))  # the option is off
    assert versions(graph, drive, "Repl/a.txt") == ["3.0", "2.0"]


@pytest.mark.slow
def test_prune_a_folder_dry_run_then_resumed_after_a_stop(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    upn, drive = megan(server)
    for folder in ("x", "y", "z"):
        for name in ("p.txt", "q.txt"):
            put_versions(graph, drive, f"Prune/{folder}/{name}", 3)
    put_versions(graph, drive, "Prune/single.txt", 1)
    store = server.store
    assert store is not None
    record = store.tenant.drive(drive)
    assert record is not None
    used_before = record.used
    target = f"onedrive:{upn}/Prune"
    base = ["--emulator", str(server.data_dir), "--state", str(tmp_path / "s.db")]
    assert main(["versions", "prune", target, "--dry-run", "--json", *base]) == 0
    assert versions(graph, drive, "Prune/x/p.txt") == ["3.0", "2.0", "1.0"]  # nothing went

    async def stopped_after_first_folder() -> None:
        stop = asyncio.Event()
        async with GraphClient(
            token=lambda: token,
            base_url=server.info["graph_url"],
            verify=ssl.create_default_context(cafile=server.info["ca_file"]),
            pacer=Pacer(),
        ) as client:
            with open_state(tmp_path / "s.db") as state:
                lines: list[str] = []

                def say(line: str) -> None:
                    lines.append(line)
                    if len(lines) == 2:  # the first folder's two files
                        stop.set()

                result = await prune_target(
                    client, parse_target(target), state, say=say, stop=stop, workers=1
                )
        assert result.stopped and result.versions == 4

    asyncio.run(stopped_after_first_folder())
    assert main(["versions", "prune", target, "--json", *base]) == 0
    # The folder already done was skipped (resumed); the rest were pruned.
    assert (
        sorted(versions(graph, drive, f"Prune/{f}/{n}") for f in "xyz" for n in ("p.txt", "q.txt"))
        == [["3.0"]] * 6
    )
    assert versions(graph, drive, "Prune/single.txt") == ["1.0"]
    record = store.tenant.drive(drive)
    assert record is not None and record.used < used_before


@pytest.mark.slow
def test_prune_json_counts(server: EmulatorServer, graph: httpx.Client, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    upn, drive = megan(server)
    put_versions(graph, drive, "Count/a.txt", 4)
    base = ["--emulator", str(server.data_dir), "--state", str(tmp_path / "s.db"), "--json"]
    assert main(["versions", "prune", f"onedrive:{upn}/Count", "--dry-run", *base]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["files"], dry["versions"], dry["dry_run"]) == (1, 3, True)
    assert main(["versions", "prune", f"onedrive:{upn}/Count", *base]) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["versions"], done["pruned_files"], done["failed"]) == (3, 1, 0)
    assert versions(graph, drive, "Count/a.txt") == ["4.0"]
