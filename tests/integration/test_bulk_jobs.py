"""`sharelift migrate --jobs FILE` against the emulator: SPMT CSV and JSON job files, row
validation, Windows sources mapped to local folders, and the aggregated summary."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer

TEAM = "https://contoso.sharepoint.com/sites/Team"
MEGAN = "https://contoso-my.sharepoint.com/personal/megan_contoso_com/"


def _drive(server: EmulatorServer, web_url: str) -> str:
    return str(next(d["id"] for d in server.info["drives"] if d["webUrl"] == web_url))


def _share(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run(server: EmulatorServer, tmp_path: Path, *args: str) -> int:
    return main(
        [
            "migrate",
            *args,
            "--emulator",
            str(server.data_dir),
            "--state",
            str(tmp_path / "state.db"),
            "--report",
            str(tmp_path / "reports"),
            "--quiet",
        ]
    )


def _summary(tmp_path: Path) -> list[dict[str, str]]:
    text = (tmp_path / "reports" / "SummaryReport.csv").read_text(encoding="utf-8-sig")
    return list(csv.DictReader(text.splitlines()))


@pytest.mark.slow
def test_fifty_row_csv_with_broken_rows(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shares = tmp_path / "shares"
    lines = ["Source,Source DocLib,Source SubFolder,Target Web,Target DocLib,Target SubFolder"]
    for n in range(1, 47):
        src = _share(shares, f"dept{n:02d}", {"a.txt": f"a{n}", "sub/b.txt": f"b{n}"})
        lines.append(f'"{src}",,,{TEAM}/,Documents,"Bulk/Dept {n:02d}"')
    src = _share(shares, "home", {"notes.txt": "mine"})
    lines.append(f"{src},,,{MEGAN},Documents,FromShare")  # a OneDrive target
    lines.append(f"{shares / 'missing'},,,{TEAM},Documents,X")  # row 49: no such folder
    lines.append(f"{shares / 'dept01'},,,{TEAM}/,Documents,Bulk/Dept 01")  # row 50: duplicate
    lines.append(f"{shares / 'dept02'},,,ftp://nowhere,Documents,")  # row 51: bad URL
    lines.append(f"{shares / 'dept03'},,,{TEAM},,Y")  # row 52: no library
    job_file = tmp_path / "jobs.csv"
    job_file.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")

    code = _run(emulator, tmp_path, "--jobs", str(job_file), "--max-parallel-jobs", "8")
    err = capsys.readouterr().err
    assert code == 1  # the valid rows ran; the bad ones make the run not clean
    assert "jobs.csv: row 49, column Source:" in err and "is not a folder" in err
    assert "jobs.csv: row 50: duplicate of row 2" in err
    assert "jobs.csv: row 51, column Target Web:" in err
    assert "jobs.csv: row 52, column Target DocLib: empty" in err

    team = _drive(emulator, f"{TEAM}/Shared%20Documents")
    for n in (1, 23, 46):
        got = graph.get(f"/drives/{team}/root:/Bulk/Dept {n:02d}/sub/b.txt:/content")
        assert got.status_code in (200, 302)
    megan = next(u["drive_id"] for u in emulator.info["users"] if u["upn"] == "megan@contoso.com")
    assert graph.get(f"/drives/{megan}/root:/FromShare/notes.txt").status_code == 200

    rows = _summary(tmp_path)
    assert rows[-1]["Job"] == "Total"
    statuses = [r["Status"] for r in rows[:-1]]
    assert statuses.count("completed") == 47 and statuses.count("invalid") == 4
    assert rows[-1]["Migrated items"] == str(46 * 3 + 1)  # folders count as items
    # The Total row spans the run: from the first start to the last end, as Excel reads them.
    total, jobs = rows[-1], [r for r in rows[:-1] if r["Start"]]
    assert total["Start"] == min(r["Start"] for r in jobs)
    assert total["End"] == max(r["End"] for r in jobs)
    start, end = (datetime.strptime(total[k], "%Y-%m-%d %H:%M:%S") for k in ("Start", "End"))
    hours, minutes, seconds = (int(p) for p in total["Duration"].split(":"))
    assert abs(hours * 3600 + minutes * 60 + seconds - (end - start).total_seconds()) <= 1
    migrated = int(total["Migrated bytes"])
    assert migrated == sum(int(r["Migrated bytes"]) for r in jobs) > 0
    span = max((end - start).total_seconds(), 1)
    assert abs(float(total["GB/hour"]) - migrated / 1024**3 / (span / 3600)) < 0.002
    assert total["Time zone"] == "UTC"
    doc = json.loads((tmp_path / "reports" / "summary.json").read_text(encoding="utf-8"))
    assert doc["statuses"] == {"completed": 47, "invalid": 4}
    assert (tmp_path / "reports" / "row-2" / "ItemReport.csv").exists()

    state = str(tmp_path / "state.db")
    assert main(["status", "--state", state, "--jobs", str(job_file), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert len(status["jobs"]) == 47
    assert {j["name"].rsplit("#", 1)[1] for j in status["jobs"]} == {str(n) for n in range(2, 49)}
    assert main(["status", "--state", state, "--jobs", str(tmp_path / "other.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["jobs"] == []


def test_strict_refuses_the_whole_file(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _share(tmp_path, "s", {"a.txt": "a"})
    job_file = tmp_path / "jobs.csv"
    job_file.write_text(
        f"{src},,,{TEAM},Documents,Strict\n{tmp_path / 'nope'},,,{TEAM},Documents,Strict2\n",
        encoding="utf-8",
    )
    code = _run(emulator, tmp_path, "--jobs", str(job_file), "--strict")
    assert code == 2
    err = capsys.readouterr().err
    assert "1 bad row(s), nothing run (--strict)" in err and "row 2, column Source" in err
    assert not (tmp_path / "state.db").exists()


def test_json_job_file_with_settings(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = _share(
        tmp_path,
        "share",
        {"keep.docx": "k", "skip.mp3": "m", "skip.TXT": "t", ".hidden": "h"},
    )
    job_file = tmp_path / "jobs.json"
    tasks = {
        "Tasks": [
            {
                "SourcePath": str(src),
                "TargetPath": TEAM,
                "TargetList": "Archive",
                "TargetListRelativePath": "FromJson",
                "Settings": {
                    "MigrateHiddenItems": False,
                    "SkipFilesWithExtensions": "txt:mp3",
                    "MigrateItemsModifiedAfter": "2001-01-01",
                    "EnableIncremental": True,
                    # Asked for, not done: each is a warning on the row and in the summary.
                    "PreservePermission": True,
                    "UserMappingCSVFile": "C:\\migration\\users.csv",
                    "MigrateFileVersionHistory": False,  # asks for nothing: no warning
                },
            },
            {
                "SourcePath": str(src),
                "TargetPath": TEAM,
                "TargetList": "Archive",
                "Settings": {"MigrateEverythingTwice": True},
            },
        ]
    }
    job_file.write_text(json.dumps(tasks), encoding="utf-8")
    code = _run(emulator, tmp_path, "--jobs", str(job_file))
    assert code == 1
    rows = _summary(tmp_path)
    assert rows[0]["Status"] == "completed"
    assert rows[0]["Message"] == (
        "warning: PreservePermission is not applied: permissions are not migrated (items take "
        "the target's permissions); warning: UserMappingCSVFile is not applied: no user "
        "mapping is applied (permissions and authors are not migrated)"
    )
    out = capsys.readouterr().out
    assert "2 warnings (settings not applied)" in out
    assert "warning: jobs.json#1: PreservePermission is not applied" in out
    assert rows[1]["Status"] == "invalid"
    assert "column Settings.MigrateEverythingTwice: unknown setting" in rows[1]["Message"]
    archive = _drive(emulator, f"{TEAM}/Archive")
    names = {
        c["name"] for c in graph.get(f"/drives/{archive}/root:/FromJson:/children").json()["value"]
    }
    assert names == {"keep.docx"}


def test_windows_sources_mapped_to_a_local_folder(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mount = tmp_path / "mnt" / "fs01"
    _share(mount, "Dept/Finance", {"budget.xlsx": "b"})
    _share(mount, "Dept/HR", {"staff.csv": "s"})
    _share(tmp_path / "cdrive", "Exports", {"e.txt": "e"})
    job_file = tmp_path / "jobs.csv"
    job_file.write_text(
        "\r\n".join(
            [
                f'"\\\\FS01\\dept\\Finance",,,{TEAM},Documents,Win/Finance',
                f"\\\\fs01\\Dept\\HR\\,,,{TEAM},Documents,Win/HR",
                f"C:\\Exports,,,{TEAM},Documents,Win/Exports",
                f"\\\\other\\share,,,{TEAM},Documents,Win/Other",
            ]
        ),
        encoding="utf-8",
    )
    code = _run(
        emulator,
        tmp_path,
        "--jobs",
        str(job_file),
        "--map-source",
        f"\\\\fs01={tmp_path / 'wrong'}",
        "--map-source",
        f"\\\\fs01\\dept={mount / 'Dept'}",
        "--map-source",
        f"c:\\={tmp_path / 'cdrive'}",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "row 4, column Source: '\\\\\\\\other\\\\share' is a Windows path" in err
    team = _drive(emulator, f"{TEAM}/Shared%20Documents")
    for path in ("Win/Finance/budget.xlsx", "Win/HR/staff.csv", "Win/Exports/e.txt"):
        assert graph.get(f"/drives/{team}/root:/{path}").status_code == 200, path
