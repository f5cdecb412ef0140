"""Conflict policies through `sharelift migrate`: files already at the target (put there
through Graph before the first run, older or newer, with other or the same bytes).

    newer (default)   target newer: skipped; target older: replaced; same bytes: adopted, not sent
    --overwrite       everything replaced
    --on-conflict rename   both kept: ours arrives as "name 1.ext"; a re-run adds nothing
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from migrate_helpers import (
    UNIT,
    download,
    expected_files,
    graph_client,
    megan,
    target_files,
    write_tree,
)

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer

SOURCE_TIME = datetime(2024, 1, 1, 12, tzinfo=UTC).timestamp()
OLDER = "2023-01-01T12:00:00Z"
NEWER = "2025-06-01T12:00:00Z"

SOURCE = {
    "older.txt": b"source version, longer than theirs",
    "newer.txt": b"source version, longer than theirs",
    "same.bin": os.urandom(3 * UNIT + 5),  # identical at the target: adopted, never sent
    "sub/same-size-older.txt": b"source 12345",
    "sub/same-size-newer.txt": b"source 67890",
    "sub/only-here.txt": b"new",
}
THEIRS = {
    # path: (bytes, their lastModifiedDateTime)
    "older.txt": (b"their old", OLDER),
    "newer.txt": (b"their new", NEWER),
    "same.bin": (SOURCE["same.bin"], OLDER),
    "sub/same-size-older.txt": (b"their 123456", OLDER),
    "sub/same-size-newer.txt": (b"their 678901", NEWER),
}


@pytest.fixture
def graph(emulator: EmulatorServer, app_token: Callable[..., str]) -> Iterator[httpx.Client]:
    with graph_client(emulator, app_token(emulator)) as client:
        yield client


def prepare(emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path, folder: str) -> Path:
    """The source (all files at SOURCE_TIME) and their files at the target, with their times."""
    src = tmp_path / "src"
    write_tree(src, SOURCE)
    for rel in SOURCE:
        os.utime(src / rel, (SOURCE_TIME, SOURCE_TIME))
    _, drive = megan(emulator)
    for rel, (data, modified) in THEIRS.items():
        session = graph.post(
            f"/drives/{drive}/root:/{folder}/{rel}:/createUploadSession",
            json={"item": {"fileSystemInfo": {"lastModifiedDateTime": modified}}},
        )
        assert session.status_code == 200, session.text
        done = graph.put(  # the upload URL gets no bearer token from this client
            session.json()["uploadUrl"],
            content=data,
            headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"},
        )
        assert done.status_code == 201, done.text
    return src


def migrate(
    emulator: EmulatorServer, src: Path, folder: str, tmp_path: Path, *flags: str
) -> tuple[int, dict[str, tuple[str, str]]]:
    """Run `sharelift migrate`; returns the exit code and, per file, (status, result code)
    from the round's ItemReport.csv."""
    upn, _ = megan(emulator)
    reports = tmp_path / f"reports-{len(list(tmp_path.glob('reports-*')))}"
    code = main(
        [
            "migrate",
            str(src),
            f"onedrive:{upn}/{folder}",
            "--emulator",
            str(emulator.data_dir),
            "--state",
            str(tmp_path / "state.db"),
            "--report",
            str(reports),
            "--chunk-size",
            "320k",
            "--quiet",
            *flags,
        ]
    )
    with (reports / "ItemReport.csv").open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    outcome = {
        os.path.relpath(r["Source"], src): (r["Status"].lower(), r["Error code"])
        for r in rows
        if r["Extension"] or "." in os.path.basename(r["Source"])
    }
    return code, outcome


def target_item(graph: httpx.Client, drive: str, path: str) -> dict[str, object]:
    response = graph.get(f"/drives/{drive}/root:/{path}")
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


def test_newer_policy_skips_newer_replaces_older_adopts_identical(
    emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    folder = "Conflicts-newer"
    src = prepare(emulator, graph, tmp_path, folder)
    _, drive = megan(emulator)
    same_before = target_item(graph, drive, f"{folder}/same.bin")
    emulator.reset_stats()
    code, outcome = migrate(emulator, src, folder, tmp_path)
    assert code == 0
    # The identical 1 MB file was hashed locally and adopted: not one fragment of it was sent.
    assert emulator.stats()["bytes_in"] < 20_000
    assert outcome["newer.txt"][0] == "skipped"
    assert outcome["sub/same-size-newer.txt"][0] == "skipped"
    for rel in ("older.txt", "same.bin", "sub/same-size-older.txt", "sub/only-here.txt"):
        assert outcome[rel][0] != "skipped", (rel, outcome[rel])
    expected = dict(SOURCE)
    expected["newer.txt"] = THEIRS["newer.txt"][0]
    expected["sub/same-size-newer.txt"] = THEIRS["sub/same-size-newer.txt"][0]
    assert target_files(graph, drive, folder) == expected_files(expected)
    # Theirs was older: adopted, and given the source's times as a replacement would have.
    same_after = target_item(graph, drive, f"{folder}/same.bin")
    assert same_after["id"] == same_before["id"]
    times = same_after["fileSystemInfo"]
    assert isinstance(times, dict)
    assert times["lastModifiedDateTime"] == "2024-01-01T12:00:00Z"
    # A second run changes nothing: no request for the files it migrated or adopted, and the
    # two it skipped are looked at again (the source may have become newer) but not sent.
    emulator.reset_stats()
    code, outcome = migrate(emulator, src, folder, tmp_path)
    assert code == 0
    stats = emulator.stats()
    graph_requests = stats["requests"] - stats["by_kind"].get("identity", 0)
    assert graph_requests <= 3 + 2 * 2, stats
    assert "upload" not in stats["by_kind"], stats
    assert outcome["newer.txt"][0] == outcome["sub/same-size-newer.txt"][0] == "skipped"
    assert target_files(graph, drive, folder) == expected_files(expected)


def test_overwrite_replaces_everything(
    emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    folder = "Conflicts-overwrite"
    src = prepare(emulator, graph, tmp_path, folder)
    code, outcome = migrate(emulator, src, folder, tmp_path, "--overwrite")
    assert code == 0
    assert all(status != "skipped" for status, _ in outcome.values()), outcome
    _, drive = megan(emulator)
    assert target_files(graph, drive, folder) == expected_files(SOURCE)
    assert download(graph, drive, f"{folder}/newer.txt") == SOURCE["newer.txt"]


def test_rename_keeps_both_and_a_rerun_adds_nothing(
    emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    folder = "Conflicts-rename"
    src = prepare(emulator, graph, tmp_path, folder)
    code, _ = migrate(emulator, src, folder, tmp_path, "--on-conflict", "rename")
    assert code == 0
    _, drive = megan(emulator)
    expected = {rel: data for rel, (data, _) in THEIRS.items()}
    for rel in THEIRS:
        if rel != "same.bin":  # the same bytes are adopted, not kept twice
            stem, ext = os.path.splitext(rel)
            expected[f"{stem} 1{ext}"] = SOURCE[rel]
    expected["sub/only-here.txt"] = SOURCE["sub/only-here.txt"]
    assert target_files(graph, drive, folder) == expected_files(expected)
    # Unchanged: nothing happens. Changed: our copy ("older 1.txt") is updated, theirs is not
    # touched, and no third copy appears.
    code, _ = migrate(emulator, src, folder, tmp_path, "--on-conflict", "rename")
    assert code == 0
    assert target_files(graph, drive, folder) == expected_files(expected)
    (src / "older.txt").write_bytes(b"source, changed after the first run")
    code, _ = migrate(emulator, src, folder, tmp_path, "--on-conflict", "rename")
    assert code == 0
    expected["older 1.txt"] = b"source, changed after the first run"
    assert target_files(graph, drive, folder) == expected_files(expected)
