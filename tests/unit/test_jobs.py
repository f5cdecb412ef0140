"""Job files without the network: SPMT CSV and JSON parsing, row errors, source mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharelift.errors import ConfigError, UsageError
from sharelift.jobs import SourceMap, load_job_file

SITE = "https://contoso.sharepoint.com/sites/Team"


def _share(tmp_path: Path, name: str = "share") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_csv_with_bom_header_quotes_and_hub_columns(tmp_path: Path) -> None:
    src = _share(tmp_path, "a, b")
    path = tmp_path / "jobs.csv"
    path.write_text(
        "Source,Source DocLib,Source SubFolder,Target Web,Target DocLib,Target SubFolder,"
        "RegisterAsHubSite,AssociateWithHubURL\r\n"
        f'"{src}",,,{SITE}/,"Shared Documents","x, y/z",,\r\n'
        "\r\n",
        encoding="utf-8-sig",
    )
    jobs = load_job_file(path)
    assert not jobs.errors
    (job,) = jobs.jobs
    assert job.row == 2 and job.source == str(src) and job.name == "jobs.csv#2"
    assert job.target.kind == "site" and job.target.site_path == "/sites/Team"
    assert job.target.library == "Shared Documents" and job.target.folder == "x, y/z"
    assert job.personal_path == ""


def test_onedrive_target_is_recognised(tmp_path: Path) -> None:
    src = _share(tmp_path)
    path = tmp_path / "jobs.csv"
    path.write_text(
        f"{src},,,https://contoso-my.sharepoint.com/personal/megan_contoso_com/,Documents,\n",
        encoding="utf-8",
    )
    (job,) = load_job_file(path).jobs
    assert job.personal_path == "/personal/megan_contoso_com"


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("{src},lib,,{site},Documents,", "column Source DocLib: must be empty"),
        ("{src},,,{site},Documents,,true,", "column RegisterAsHubSite"),
        ("{src},,,{site},Documents,../up", "column Target SubFolder"),
        ("{src},,,,Documents,", "column Target Web: empty"),
        ("{src},,{site}", "3 columns, expected 6"),
        (",,,{site},Documents,", "column Source: empty"),
    ],
)
def test_bad_rows_name_row_and_column(tmp_path: Path, row: str, needle: str) -> None:
    src = _share(tmp_path)
    path = tmp_path / "jobs.csv"
    good = f"{src},,,{SITE},Documents,ok"
    path.write_text(good + "\n" + row.format(src=src, site=SITE) + "\n", encoding="utf-8")
    jobs = load_job_file(path)
    assert len(jobs.jobs) == 1
    (error,) = jobs.errors
    assert str(error).startswith("jobs.csv: row 2") and needle in str(error), str(error)


def test_duplicates_are_case_insensitive(tmp_path: Path) -> None:
    src = _share(tmp_path)
    path = tmp_path / "jobs.csv"
    path.write_text(
        f"{src},,,{SITE},Documents,Dept\n{src},,,{SITE.upper().replace('HTTPS', 'https')}/,"
        "documents,DEPT\n",
        encoding="utf-8",
    )
    jobs = load_job_file(path)
    assert [str(e) for e in jobs.errors] == ["jobs.csv: row 2: duplicate of row 1"]
    with pytest.raises(ConfigError, match="--strict"):
        load_job_file(path, strict=True)


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_job_file(tmp_path / "missing.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("C:\\D\xe9pt,,,x,y,z\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_job_file(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text(
        "Source,Source DocLib,Source SubFolder,Target Web,Target DocLib,Target SubFolder\n"
    )
    with pytest.raises(ConfigError, match="no jobs"):
        load_job_file(empty)
    not_tasks = tmp_path / "x.json"
    not_tasks.write_text('{"tasks": []}')
    with pytest.raises(ConfigError, match="Tasks"):
        load_job_file(not_tasks)


def test_json_settings(tmp_path: Path) -> None:
    src = _share(tmp_path)
    task = {
        "SourcePath": str(src),
        "TargetPath": SITE,
        "TargetList": "Documents",
        "TargetListRelativePath": "In",
    }
    doc = {
        "Tasks": [
            {
                **task,
                "Settings": {
                    "MigrateHiddenItems": True,
                    "MigrateItemsCreatedAfter": "2020-02-03",
                    "SkipFilesWithExtensions": "TMP:.bak",
                    "PreservePermission": True,
                },
            },
            {**task, "TargetListRelativePath": "Two", "Settings": {"MigrateHiddenItems": "no"}},
            {**task, "TargetListRelativePath": "Three", "Color": "blue"},
            {
                **task,
                "TargetListRelativePath": "Four",
                "Settings": {"MigrateItemsModifiedAfter": "yesterday"},
            },
        ]
    }
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    jobs = load_job_file(path)
    (job,) = jobs.jobs
    assert job.options["skip_hidden"] is False
    assert job.options["skip_extensions"] == frozenset({"tmp", "bak"})
    assert job.options["created_after"].date().isoformat() == "2020-02-03"
    assert job.ignored == ("PreservePermission",)
    assert job.warnings == (
        "PreservePermission is not applied: permissions are not migrated (items take the "
        "target's permissions)",
    )
    messages = [str(e) for e in jobs.errors]
    assert (
        messages[0] == "jobs.json: row 2, column Settings.MigrateHiddenItems: must be true or false"
    )
    assert messages[1] == "jobs.json: row 3, column Color: unknown task field"
    assert messages[2].startswith("jobs.json: row 4, column Settings.MigrateItemsModifiedAfter:")


def test_source_map_longest_prefix_case_insensitive(tmp_path: Path) -> None:
    mapping = SourceMap(
        ["\\\\fs01=/mnt/fs01", "\\\\FS01\\Dept=/mnt/dept", "c:\\=/mnt/c"], windows=False
    )
    assert mapping.map("\\\\fs01\\dept\\HR\\") == "/mnt/dept/HR"
    assert mapping.map("//FS01/DEPT") == "/mnt/dept"
    assert mapping.map("\\\\fs01\\department") == "/mnt/fs01/department"
    assert mapping.map("C:\\Users\\megan") == "/mnt/c/Users/megan"
    assert mapping.map("/already/local") == "/already/local"
    with pytest.raises(ValueError, match="no --map-source prefix matches"):
        mapping.map("\\\\fs02\\x")
    assert SourceMap(windows=True).map("\\\\fs02\\x") == "\\\\fs02\\x"
    with pytest.raises(UsageError, match="WINDOWS_PREFIX=LOCAL_FOLDER"):
        SourceMap(["no-equals-sign"])


def test_a_row_names_its_group_of_workers(tmp_path: Path) -> None:
    a, b = _share(tmp_path, "a"), _share(tmp_path, "b")
    csv_path = tmp_path / "jobs.csv"
    csv_path.write_text(
        f"{a},,,{SITE},Documents,,,,emea\n{b},,,{SITE},Documents,x,,\n", encoding="utf-8"
    )
    assert [j.group for j in load_job_file(csv_path).jobs] == ["emea", ""]
    json_path = tmp_path / "jobs.json"
    task = {"SourcePath": str(a), "TargetPath": SITE, "TargetList": "Documents"}
    json_path.write_text(json.dumps({"Tasks": [{**task, "AgentGroup": "apac"}]}))
    assert [j.group for j in load_job_file(json_path).jobs] == ["apac"]
