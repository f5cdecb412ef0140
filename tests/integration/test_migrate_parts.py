"""A round in parts (`Engine.run_part`), against the emulator: the first part carves the
folders it has no budget left for, each carved folder runs as a part of its own, and together
they migrate the tree exactly as one round does, with renames decided where the folders are."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from migrate_helpers import UNIT, expected_files, graph_client, megan, target_files, write_tree

from sharelift.emulator.server import EmulatorServer
from sharelift.engine import Engine, EngineConfig
from sharelift.engine.parts import Budget, FolderPlace, Part
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.pacer import Pacer
from sharelift.source.walk import Listing, ScanOptions
from sharelift.state import ItemStatus, RoundStatus, open_state
from sharelift.target import parse_target, resolve_target


class Recorder:
    """A carver that keeps the folders it carves, as the cluster records units."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.left_out: list[tuple[str, ...]] = []
        self.carved: list[tuple[tuple[str, ...], FolderPlace]] = []

    def prune(self, parts: tuple[str, ...]) -> bool:
        if self.budget.prune(parts):
            self.left_out.append(parts)
            return True
        return False

    def pruned(self) -> list[tuple[str, ...]]:
        out, self.left_out = self.left_out, []
        return out

    def walked(self, listing: Listing) -> None:
        self.budget.walked(listing)

    async def carve(self, parts: tuple[str, ...], place: FolderPlace, root_id: str) -> None:
        self.carved.append((parts, place))
        self.root_id = root_id


def tree() -> dict[str, bytes]:
    rng = random.Random(7)
    files = {f"d{i}/e{j}/f{k}.txt": rng.randbytes(200) for i in range(3) for j in range(3)
             for k in range(3)}  # fmt: skip
    files["top.txt"] = b"top"
    files["d1/a:b/x.txt"] = b"renamed folder"  # the folder becomes a_b at the target
    files["d2/big.bin"] = rng.randbytes(3 * UNIT + 5)
    return files


@pytest.mark.slow
def test_parts_together_migrate_the_tree(
    emulator_factory: Callable[..., EmulatorServer],
    app_token: Callable[..., str],
    tmp_path: Path,
) -> None:
    server = emulator_factory()
    token = app_token(server)
    files = tree()
    src = tmp_path / "src"
    write_tree(src, files)
    upn, drive = megan(server)
    target = f"onedrive:{upn}/Parts"

    async def go() -> list[int]:
        info = server.info
        async with GraphClient(
            token=lambda: token,
            base_url=info["graph_url"],
            verify=info["ca_file"],
            connect=info["connect"],
            pacer=Pacer(max_concurrency=4),
        ) as client:
            resolved = await resolve_target(client, parse_target(target))
            with open_state(tmp_path / "state.db") as store:
                job = store.ensure_job("parts", str(src), target)
                rnd = store.start_round(job.id)

                def engine() -> Engine:
                    return Engine(
                        drive=DriveClient(client, resolved.drive_id),
                        store=store,
                        job=job,
                        source=str(src),
                        target=resolved,
                        options=ScanOptions(),
                        config=EngineConfig(chunk_size=2 * UNIT, workers=4),
                    )

                first = Recorder(Budget(files=4, size=1 << 40))
                result, ok = await engine().run_part(Part(rnd.id, carver=first))
                assert result.status == RoundStatus.COMPLETED and ok
                assert first.carved, "the first part carved nothing"
                root_id = (await resolve_target(client, parse_target(target))).folder_id
                queue = list(first.carved)
                sizes = [result.uploaded]
                while queue:
                    parts, place = queue.pop()
                    assert place.folder_id is not None and not place.lost
                    carver = Recorder(Budget(files=4, size=1 << 40))
                    part = Part(rnd.id, parts, place, root_id, carver=carver)
                    result, ok = await engine().run_part(part)
                    assert result.status == RoundStatus.COMPLETED and ok
                    queue += carver.carved
                    sizes.append(result.uploaded)
                store.finish_round(rnd.id, RoundStatus.COMPLETED)
                assert store.check() == []
                assert store.count_items(job.id) == {"done": len(files) + 13}
                assert all(i.status is ItemStatus.DONE for i in store.items(job.id))
                return sizes

    sizes = asyncio.run(go())
    assert len(sizes) > 3 and sum(sizes) == len(files)
    expected = expected_files({k.replace("a:b", "a_b"): v for k, v in files.items()})
    with graph_client(server, token) as graph:
        assert target_files(graph, drive, "Parts") == expected
