"""`sharelift scan`: decisions over a real tree, the three reports, JSON output and exit codes."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from sharelift.cli import main
from sharelift.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from sharelift.scanner import (
    REPORT_COLUMNS,
    REPORT_CSV,
    SUMMARY_COLUMNS,
    SUMMARY_CSV,
    SUMMARY_JSON,
    run_scan,
    scan,
)
from sharelift.source import Code, RenamePolicy, ScanOptions, Status, TargetPrefix

TEAM = "https://contoso.sharepoint.com/sites/Team/Shared%20Documents"


def build(root: Path) -> None:
    """A small tree with one example of most findings."""
    files = {
        "clean/report.docx": b"x" * 10,
        "clean/notes.txt": b"",
        "names/a:b.txt": b"12345",
        "names/a_b.txt": b"1",
        "names/ lead.txt": b"",
        "names/CON": b"",
        "names/~$lock.docx": b"",
        "case/Readme.md": b"",
        "case/README.md": b"",
        "unicode/caf\u00e9": b"",
        "unicode/cafe\u0301": b"",
        "forms/inside.txt": b"",
        ".hidden": b"",
        "skip.tmp": b"",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with open(root / "huge.bin", "wb") as f:
        f.truncate(251 * 1024**3)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    build(root)
    return root


def entries(root: Path, **kw: object) -> dict[str, object]:
    return {e.relpath: e for e in scan(root, ScanOptions(**kw))}  # type: ignore[arg-type]


def test_decisions_over_a_tree(tree: Path) -> None:
    by = {e.relpath: e for e in scan(tree, ScanOptions())}
    assert by["clean/report.docx"].status is Status.MIGRATE
    assert by["clean/report.docx"].target_parts == ("clean", "report.docx")
    assert by["names/a:b.txt"].target_parts == ("names", "a_b (1).txt")
    assert by["names/ lead.txt"].target_parts == ("names", "lead.txt")
    assert by["names/CON"].target_parts == ("names", "CON_")
    assert by["names/~$lock.docx"].target_parts == ("names", "_$lock.docx")
    assert {by["case/Readme.md"].status, by["case/README.md"].status} == {
        Status.MIGRATE,
        Status.RENAMED,
    }
    assert by["forms"].target_parts == ("forms_",)
    assert by["forms/inside.txt"].target_parts == ("forms_", "inside.txt")
    assert by["huge.bin"].status is Status.BLOCKED


def test_a_folder_comes_just_before_its_content(tree: Path) -> None:
    order = [e.relpath for e in scan(tree, ScanOptions())]
    assert order.index("names") < order.index("names/a:b.txt")
    assert order.index("clean") == order.index("clean/notes.txt") - 1
    assert len(order) == len(set(order))


def test_path_length_counts_the_target_prefix_and_renamed_parents(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "x:y").mkdir(parents=True)
    (root / "x_y").mkdir()
    (root / "x:y" / "f.txt").touch()
    prefix = TargetPrefix.parse(TEAM)
    by = {e.relpath: e for e in scan(root, ScanOptions(target=prefix))}
    # "x:y" becomes "x_y (1)", four characters longer than its source name.
    expected = len("/sites/Team/Shared Documents/x_y (1)/f.txt")
    assert by["x:y/f.txt"].path_length == expected
    assert by["x:y/f.txt"].target_parts == ("x_y (1)", "f.txt")
    # Just over the limit with the prefix, fine without it. (A local name is at most 255 bytes,
    # so the long path is built from two folders.)
    top = "t" * 200
    name = "n" * (400 - len(f"/sites/Team/Shared Documents/deep/{top}/"))
    (root / "deep" / top / name).mkdir(parents=True)
    (root / "deep" / top / (name + "x")).mkdir()
    (root / "deep" / top / (name + "x") / "child.txt").touch()
    by = {e.relpath: e for e in scan(root, ScanOptions(target=prefix))}
    assert by[f"deep/{top}/{name}"].status is Status.MIGRATE
    assert by[f"deep/{top}/{name}"].path_length == 400
    over = by[f"deep/{top}/{name}x"]
    assert over.status is Status.BLOCKED and over.target_parts is None
    assert over.findings[0].code is Code.PATH_TOO_LONG
    child = by[f"deep/{top}/{name}x/child.txt"]
    assert not child.status.migrated and child.target_parts is None
    assert Code.PARENT_NOT_MIGRATED in {f.code for f in child.findings}
    by = {e.relpath: e for e in scan(root, ScanOptions())}
    assert by[f"deep/{top}/{name}x"].status is Status.MIGRATE


def test_forms_is_fine_below_a_library_subfolder(tree: Path) -> None:
    prefix = TargetPrefix.parse(TEAM + "/Sub")
    by = {e.relpath: e for e in scan(tree, ScanOptions(target=prefix))}
    assert by["forms"].status is Status.MIGRATE


def test_rename_off_skips(tree: Path) -> None:
    by = {e.relpath: e for e in scan(tree, ScanOptions(rename=RenamePolicy.parse("off")))}
    assert by["names/a:b.txt"].status is Status.SKIPPED
    assert by["forms"].status is Status.SKIPPED
    assert by["forms/inside.txt"].status is Status.SKIPPED  # its folder is not migrated
    assert by["clean/report.docx"].status is Status.MIGRATE


def test_reports(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    options = ScanOptions(skip_extensions=frozenset({"tmp"}), target=TargetPrefix.parse(TEAM))
    summary = run_scan(tree, options, report_dir=out, target_text=TEAM)
    for name in (SUMMARY_CSV, REPORT_CSV):
        assert (out / name).read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel
    with open(out / SUMMARY_CSV, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Destination"] == TEAM
    assert int(row["Total scanned items"]) == summary.scanned == 20
    assert int(row["Total scanned folders"]) == 5
    assert int(row["Total scanned files"]) == 15
    assert int(row["Items filtered out"]) == 1
    assert int(row["Total bytes"]) == 251 * 1024**3 + 10 + 5 + 1
    with open(out / REPORT_CSV, encoding="utf-8-sig", newline="") as f:
        report = list(csv.DictReader(f))
    assert tuple(report[0]) == REPORT_COLUMNS
    codes = {r["Code"] for r in report}
    assert {"INVALID_CHARACTER", "LEADING_TRAILING_SPACE", "BLOCKED_NAME", "CASE_COLLISION",
            "UNICODE_COLLISION", "FORMS_AT_LIBRARY_ROOT", "FILE_TOO_LARGE", "TILDE_DOLLAR_PREFIX",
            "RENAME_COLLISION"} <= codes  # fmt: skip
    colon = next(
        r for r in report if r["Source"].endswith("a:b.txt") and r["Code"] == "INVALID_CHARACTER"
    )
    assert colon["Target name"] == "a_b (1).txt"
    assert colon["Target path"] == "/sites/Team/Shared Documents/names/a_b (1).txt"
    assert colon["Severity"] == "renamed"
    assert colon["Source"] == str(tree / "names" / "a:b.txt")
    data = json.loads((out / SUMMARY_JSON).read_text(encoding="utf-8"))
    assert data["scanned_items"] == 20
    assert data["findings"]["FILE_TOO_LARGE"] == 1
    assert data["largest_files"][0] == {"path": "huge.bin", "size": 251 * 1024**3}
    assert data["filters"] == {"skip-extensions": 1}
    assert len(data["longest_paths"]) == 10


def test_report_handles_names_that_are_not_utf8(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"bad\xff.txt"), "wb"):
        pass
    run_scan(root, ScanOptions(), report_dir=tmp_path / "r")
    text = (tmp_path / "r" / REPORT_CSV).read_text(encoding="utf-8-sig")
    assert "bad\\xff.txt" in text and "INVALID_UTF8" in text and "bad_.txt" in text


# --- the command line -----------------------------------------------------------------------


def test_cli_summary_and_exit_codes(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tree)]) == EXIT_OK  # findings are not errors
    out = capsys.readouterr().out
    assert "Scanned items" in out and "FILE_TOO_LARGE" in out and "huge.bin" in out
    assert main(["scan", str(tree), "--fail-on-findings"]) == EXIT_FINDINGS
    capsys.readouterr()
    clean = tree / "clean"
    assert main(["scan", str(clean), "--fail-on-findings"]) == EXIT_OK


def test_cli_json(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", str(tree), TEAM, "--json", "--skip-hidden", "--exclude", "names"])
    assert code == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["target_prefix"] == "/sites/Team/Shared Documents"
    assert data["filters"] == {"exclude": 1, "hidden": 1}
    assert data["rename"] == "underscore"


def test_cli_report_dir(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r" / "nested"
    assert main(["scan", str(tree), "--report", str(out), "--rename", "fullwidth"]) == EXIT_OK
    assert {p.name for p in out.iterdir()} == {SUMMARY_CSV, REPORT_CSV, SUMMARY_JSON}
    assert "a＿b.txt" not in (out / REPORT_CSV).read_text(encoding="utf-8-sig")
    assert "a：b.txt" in (out / REPORT_CSV).read_text(encoding="utf-8-sig")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rename", "ab"], "--rename"),
        (["--skip-extensions", "::"], "--skip-extensions"),
        (["--modified-after", "yesterday"], "--modified-after"),
        (["--created-after", "31/12/2024"], "--created-after"),
    ],
)
def test_cli_bad_arguments(
    tree: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(tree), *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("sharelift: error: ") and message in err
    assert err.count("\n") == 1


def test_cli_bad_target(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tree), "not-a-url"]) == EXIT_USAGE
    assert "TARGET" in capsys.readouterr().err


def test_cli_missing_or_file_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "missing")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"sharelift: error: SOURCE '{tmp_path / 'missing'}' does not exist\n"
    (tmp_path / "file").touch()
    assert main(["scan", str(tmp_path / "file")]) == EXIT_USAGE
    assert "is not a folder" in capsys.readouterr().err


def test_cli_missing_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["scan"])
    assert exc.value.code == EXIT_USAGE


def test_cli_refuses_a_report_inside_the_source(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(tree), "--report", str(tree / "reports")]) == EXIT_USAGE
    assert "inside SOURCE" in capsys.readouterr().err
    assert not (tree / "reports").exists()


def test_cli_unwritable_report(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").touch()
    assert main(["scan", str(tree), "--report", str(tmp_path / "afile")]) == EXIT_USAGE
    assert "--report: cannot create" in capsys.readouterr().err
    (tmp_path / "r" / REPORT_CSV).mkdir(parents=True)  # a folder where the report should go
    assert main(["scan", str(tree), "--report", str(tmp_path / "r")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("sharelift: error: --report: cannot write") and err.count("\n") == 1


def test_source_problems_become_findings(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "real").mkdir(parents=True)
    (root / "a.txt").touch()
    (root / "gone").mkdir()
    (root / "real" / "up").symlink_to("..")
    (root / "dangling").symlink_to("nowhere")
    os.mkfifo(root / "fifo")
    entries = scan(root, ScanOptions(follow_symlinks=True))
    first = next(entries)
    assert first.relpath == "a.txt"
    (root / "gone").rmdir()  # vanishes between its parent's listing and its own
    by = {e.relpath: e for e in [first, *entries]}
    expected = {
        "gone": (Code.UNREADABLE_FOLDER, Status.BLOCKED),
        "real/up": (Code.SYMLINK_LOOP, Status.SKIPPED),
        "dangling": (Code.BROKEN_SYMLINK, Status.SKIPPED),
        "fifo": (Code.SPECIAL_FILE, Status.SKIPPED),
    }
    for path, (code, status) in expected.items():
        assert [f.code for f in by[path].findings] == [code], path
        assert by[path].status is status and by[path].target_parts is None
    assert by["real"].status is Status.MIGRATE
    not_followed = {e.relpath: e for e in scan(root, ScanOptions())}
    assert not_followed["dangling"].findings[0].code is Code.SYMLINK_NOT_FOLLOWED
