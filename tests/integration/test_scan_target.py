"""`sharelift scan SOURCE TARGET`: every form of TARGET counts the same path toward the
400-character limit, and with the connection options TARGET is resolved through Graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer

MEGAN_URL = "https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents"


def _scan(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["scan", *args, "--json"]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def test_every_target_form_counts_the_same_path(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "share"
    (source / ("d" * 150)).mkdir(parents=True)
    # 45 + 1 + 150 + 1 + 204 = 401: one over the limit, and 8 under without the folder
    (source / ("d" * 150) / ("f" * 200 + ".txt")).write_text("x")
    drive = next(u["drive_id"] for u in emulator.info["users"] if u["upn"].startswith("megan"))
    forms = {
        "url": [f"{MEGAN_URL}/Reports"],
        "onedrive": ["onedrive:megan@contoso.com/Reports"],
        "resolved onedrive": ["onedrive:megan@contoso.com/Reports", "--emulator",
                              str(emulator.data_dir)],
        "resolved drive id": [f"drive:{drive}/Reports", "--emulator", str(emulator.data_dir)],
    }  # fmt: skip
    found = {name: _scan(capsys, str(source), *args) for name, args in forms.items()}
    for name, doc in found.items():
        assert doc["target_prefix"] == "/personal/megan_contoso_com/Documents/Reports", name
        assert doc["longest_paths"] == found["url"]["longest_paths"], name
        assert doc["findings"] == {"PATH_TOO_LONG": 1}, name


def test_a_drive_id_needs_a_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHARELIFT_TENANT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert main(["scan", str(tmp_path), "drive:b!abc/x"]) == 2
    assert "no tenant to sign in to" in capsys.readouterr().err
