"""Scripting and pre-flight: `migrate --dry-run --json` (the plan as JSON lines) and
`migrate --jobs FILE --dry-run` (every row checked, nothing written), against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer

TEAM = "https://contoso.sharepoint.com/sites/Team"
MEGAN = "https://contoso-my.sharepoint.com/personal/megan_contoso_com"


def _share(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "budget*.xlsx ").write_text("b")
    (root / "desktop.ini").write_text("c")
    return root


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_dry_run_writes_its_plan_as_json_lines(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _share(tmp_path / "share")
    state = tmp_path / "state.db"
    args = ["migrate", str(source), f"{TEAM}/Shared Documents/Plan-{tmp_path.name}",
            "--emulator", str(emulator.data_dir), "--state", str(state), "--dry-run",
            "--json"]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err == ""
    events = _lines(out)
    plans = {e["source"]: e for e in events if e["event"] == "plan"}
    top = f"/sites/Team/Shared Documents/Plan-{tmp_path.name}"
    assert plans["a.txt"] == {
        "event": "plan", "source": "a.txt", "target": f"{top}/a.txt", "action": "upload",
        "reason": "", "kind": "file", "size": 1,
    }  # fmt: skip
    assert plans["sub"]["action"] == "create_folder" and plans["sub"]["kind"] == "folder"
    renamed = plans["sub/budget*.xlsx "]
    assert renamed["target"] == f"{top}/sub/budget_.xlsx" and renamed["action"] == "upload"
    assert renamed["reason"].startswith("INVALID_CHARACTER: ")
    assert plans["desktop.ini"]["target"] == f"{top}/desktop.ini_"
    assert events[-1]["event"] == "summary" and events[-1]["plan"] == {
        "upload": 3, "create_folder": 1,
    }  # fmt: skip
    assert not state.exists()  # a dry run writes nothing


def test_a_job_file_is_pre_flighted_row_by_row_and_nothing_is_written(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = _share(tmp_path / "share")
    folder = f"Preflight-{tmp_path.name}"
    jobs = tmp_path / "jobs.json"
    task = {"SourcePath": str(source), "TargetPath": TEAM, "TargetList": "Documents"}
    jobs.write_text(json.dumps({"Tasks": [
        {**task, "TargetListRelativePath": folder, "Settings": {"PreservePermission": True}},
        {**task, "TargetPath": f"{TEAM}/Gone"},
        {**task, "SourcePath": str(tmp_path / "missing")},
        {**task, "TargetPath": MEGAN, "TargetListRelativePath": folder},
        {**task, "TargetPath": "https://contoso-my.sharepoint.com/personal/nestor_contoso_com"},
    ]}))  # fmt: skip
    state = tmp_path / "state.db"
    base = ["migrate", "--jobs", str(jobs), "--dry-run", "--emulator", str(emulator.data_dir),
            "--state", str(state)]  # fmt: skip
    assert main([*base, "--json"]) == 1  # not every row is ready
    events = _lines(capsys.readouterr().out)
    rows = {int(str(e["job"]).rsplit("#", 1)[1]): e for e in events if e["event"] == "row"}
    assert [r["status"] for _, r in sorted(rows.items())] == [
        "ready", "not ready", "not ready", "ready", "not ready",
    ]  # fmt: skip
    first = rows[1]
    assert first["destination"] == f"{TEAM}/Shared%20Documents/{folder}"
    assert (first["files"], first["renamed"]) == (3, 2)
    assert first["findings"] == {"BLOCKED_NAME": 1, "INVALID_CHARACTER": 1,
                                 "LEADING_TRAILING_SPACE": 1}  # fmt: skip
    assert first["warnings"] == [
        "PreservePermission is not applied: permissions are not migrated (items take the "
        "target's permissions)"
    ]
    assert "no site at https://contoso.sharepoint.com/sites/Team/Gone" in str(rows[2]["message"])
    assert "missing is not a folder here" in str(rows[3]["message"])
    assert (
        "no OneDrive at https://contoso-my.sharepoint.com/personal/nestor_contoso_com: it is "
        "not provisioned yet" in str(rows[5]["message"])
    )
    assert events[-1] == {"event": "summary", "rows": 5, "ready": 2, "warnings": 1}
    # Nothing written: no state store, no folder at the target.
    assert not state.exists()
    drive = next(
        d["id"] for d in emulator.info["drives"] if d["webUrl"].endswith("/Team/Shared%20Documents")
    )
    assert graph.get(f"/drives/{drive}/root:/{folder}").status_code == 404

    # Only the ready rows: exit 0, and a table a person reads.
    jobs.write_text(json.dumps({"Tasks": [{**task, "TargetListRelativePath": folder}]}))
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "1 of 1 rows ready" in out and f"row 1 -> {TEAM}/Shared%20Documents/{folder}" in out
