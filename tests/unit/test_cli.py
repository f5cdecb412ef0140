"""The command line's own contract: version, usage errors, exit codes."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sharelift import __version__
from sharelift.cli import build_parser, main
from sharelift.errors import EXIT_USAGE


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sharelift {__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


def _commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                command = f"{prefix} {name}".strip()
                found += [(command, sub), *_commands(sub, command)]
    return found


def test_every_help_page_has_examples_that_use_its_own_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    commands = _commands(build_parser())
    parsers = dict(commands)
    assert {c for c, _ in commands} >= {"scan", "migrate", "provision", "status", "report",
                                        "login", "logout", "emulator", "demo", "config",
                                        "config show", "config docs", "dashboard",
                                        "versions", "versions prune"}  # fmt: skip
    for command, parser in commands:
        page = parser.format_help()
        assert "\nExamples:\n" in page, command
        examples = page.split("\nExamples:\n", 1)[1]
        # An example is indented by two spaces, what it does by six.
        lines = [
            line.strip()
            for line in examples.splitlines()
            if line.startswith("  ") and not line.startswith("      ") and "sharelift " in line
        ]
        assert any(line.split("sharelift ", 1)[1].startswith(command) for line in lines), command
        if command.startswith("config"):
            continue  # `config show COMMAND ...` takes the flags of COMMAND
        for line in lines:
            # An example may run another command (the dashboard's: `migrate --dashboard`):
            # its flags are that command's.
            invoked = line.split("sharelift ", 1)[1]
            runs = max((c for c in parsers if invoked == c or invoked.startswith(c + " ")), key=len)
            known = {s for a in parsers[runs]._actions for s in a.option_strings}
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]+", line.split(" > ")[0]):
                assert flag in known or flag == "--config", (command, runs, flag)


def test_status_reads_at_80_columns() -> None:
    import io

    from rich.console import Console

    from sharelift.cli.status import render_status

    long = "/mnt/fileserver/departments/finance/archive/" + "quarterly-reports/" * 4
    target = "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/" + "Archive/" * 6
    report = [
        {
            "id": 7, "name": "/etc/jobs.csv#12", "source": long, "target": target,
            "last_round": {"number": 3, "status": "interrupted", "files_done": 1234567,
                           "files_total": 2345678, "bytes_done": 5 * 1024**4},
            "items": {"failed": 12},
        },
        {"id": 8, "name": "", "source": "/srv/x", "target": "https://c/x", "last_round": None,
         "items": {}},
    ]  # fmt: skip
    buf = io.StringIO()
    render_status(Console(file=buf, width=80, color_system=None), Path("/var/state.db"), report)
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[2].split() == ["job", "7", "round", "3", "interrupted", "1,234,567/2,345,678",
                                "files", "5.0", "TiB", "12", "failed"]  # fmt: skip
    folded = "".join(line.strip() for line in lines[3:6])
    assert folded.startswith(f"from {long} (/etc/jobs.csv#12)to")
    assert "job 8  round -  never run  0/0 files  0 B  0 failed" in buf.getvalue()


def test_a_defect_is_one_line_and_its_traceback_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sharelift.cli.status

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))

    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(sharelift.cli.status, "run_status", broken)
    assert main(["status", "--state", str(tmp_path / "s.db")]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sharelift: internal error: RuntimeError: a bug (a defect in sharelift")
    saved = Path(err.rsplit(" in ", 1)[1].rstrip(")\n"))
    assert saved.parent == tmp_path / "sharelift" and saved.stat().st_mode & 0o077 == 0
    assert "Traceback" in saved.read_text() and "a bug" in saved.read_text()
