"""sharelift's engine against upload URLs where the service puts them: on the SharePoint host
of the drive, reached through emulator.json's connect map, never sent a bearer token."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer

TEAM = "https://contoso.sharepoint.com/sites/Team"


@pytest.mark.slow
def test_no_bearer_token_ever_reaches_an_upload_url(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    server = emulator_factory(refuse_bearer_on_upload_urls=True)
    src = tmp_path / "share"
    (src / "big").mkdir(parents=True)
    for n in range(4):
        (src / f"note{n}.txt").write_text(f"note {n}")
    (src / "big" / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    for target in ("onedrive:megan@contoso.com/Share", f"{TEAM}/Shared Documents/Share"):
        args = [
            "migrate",
            str(src),
            target,
            "--emulator",
            str(server.data_dir),
            "--state",
            str(tmp_path / "state.db"),
            "--quiet",
        ]
        assert main(args) == 0
    stats = server.stats()
    assert stats["by_kind"]["upload"] >= 10  # every file went through an upload URL
    assert stats["bearer_on_upload_urls"] == 0
    assert stats["bearer_on_download_urls"] == 0
    assert stats["by_status"].get("401", 0) == 0
