"""rclone's OneDrive backend checks what `sharelift migrate --via migration-api` imported.

The tree goes as Migration API packages into the emulator's service, whose import worker
creates the files; rclone then reads them through Graph, unchanged, as for any OneDrive:
`rclone check` compares every file's quickXorHash with the source, `--download` every byte.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

import sharelift
from sharelift.emulator.server import EmulatorServer
from support.rclone import Rclone, rclone_for

pytestmark = [
    pytest.mark.peers,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not on PATH"),
]

_MTIME = datetime(2022, 6, 7, 8, 9, 10, tzinfo=UTC).timestamp()


@dataclass
class Setup:
    server: EmulatorServer
    rclone: Rclone
    upn: str


@pytest.fixture
def setup(
    emulator_factory: Callable[..., EmulatorServer],
    app_token: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Setup]:
    server = emulator_factory(migration_api="start")
    user = next(u for u in server.info["users"] if u["drive_id"])
    with rclone_for(server, app_token(server), tmp_path, user["drive_id"]) as rclone:
        yield Setup(server, rclone, user["upn"])


def test_rclone_checks_what_the_migration_api_imported(setup: Setup, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree = {
        "docs/readme.txt": b"from the file share\n",
        "docs/2024/q1/report.csv": b"a,b\n1,2\n" * 300,
        "docs/empty.txt": b"",
        "Übersicht/naïve café.txt": "crème brûlée\n".encode(),
        "media/big.bin": os.urandom(12 * 1024 * 1024 + 3),
    }
    for rel, data in tree.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (_MTIME, _MTIME))

    result = sharelift.migrate(
        src,
        f"onedrive:{setup.upn}/share",
        credential=sharelift.Credential.from_certificate(emulator=setup.server.data_dir),
        via="migration-api",
        state=tmp_path / "state.db",
        migration_poll=0.1,
        package_files=2,
    )
    assert (result.uploaded, result.failed) == (len(tree), 0)

    checked = setup.rclone("check", str(src), "od:share")
    assert "0 differences found" in checked.stderr
    assert "No common hash found" not in checked.stderr
    downloaded = setup.rclone("check", "--download", str(src), "od:share")
    assert "0 differences found" in downloaded.stderr
    # The manifests carried the source's modification times.
    listing = setup.rclone.lsl("od:share")
    stamp = datetime.fromtimestamp(_MTIME, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert {when for _, when in listing.values()} == {stamp}
