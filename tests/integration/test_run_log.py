"""`--log-file` and `-v`/`-vv`: what a run logs, and what it never writes anywhere.

A migration with `-vv --log-file` against the emulator, signing in with a client secret, with
server errors injected so that requests are retried, uploads logged and a file fails: the
log says what started, each failure and why, each retry, and the summary; the reports' Log
Path names the log; and neither the log, nor the reports, nor stderr holds the client secret, a
token, an upload URL (the emulator keeps the credential in its path) or a signature."""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from migrate_helpers import UNIT, write_tree

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


def _upload_paths(server: EmulatorServer) -> set[str]:
    """Every upload-session path the emulator served (their `tempauth` is the credential)."""
    server.stats()  # flushes the request log
    lines = (server.data_dir / "requests.jsonl").read_text().splitlines()
    paths = {json.loads(line)["path"] for line in lines if line.strip()}
    return {p for p in paths if "/uploadSession?" in p and "tempauth=" in p}


@pytest.mark.slow
def test_a_verbose_log_says_what_happened_and_keeps_every_secret(
    server: EmulatorServer, tmp_path: Path
) -> None:
    src, state, reports = tmp_path / "src", tmp_path / "state.db", tmp_path / "reports"
    write_tree(src, {f"f{i}.bin": os.urandom(3 * UNIT + i) for i in range(2)})
    write_tree(src, {"small.txt": b"small", "a:b.txt": b"renamed", "huge.bin": b"h" * 3_000_000})
    (src / "link").symlink_to("/usr/share/doc")
    log = tmp_path / "logs" / "run.log"
    log.parent.mkdir()
    # huge.bin's upload session is never answered: it fails (a full drive would stop the run).
    server.set_faults(never_answer="path:*/huge.bin:/createUploadSession")
    secret = str(server.info["client_secret"])
    # One Graph request in ten meets a 5xx and is retried (logged, URL and all).
    server.set_faults(error_rate=0.1, seed=7)
    env = {**os.environ, "SHARELIFT_CLIENT_SECRET": secret, "SHARELIFT_AUTH": "secret"}
    command = [
        sys.executable, "-m", "sharelift", "migrate", str(src), "onedrive:megan@contoso.com/Log",
        "--emulator", str(server.data_dir), "--state", str(state), "--report", str(reports),
        "--quiet", "-vv", "--log-file", str(log), "--chunk-size", "320k", "--read-timeout", "0.3",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr

    text = log.read_text(encoding="utf-8")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "migrate: started" in text and "round 1 started" in text
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (INFO|DEBUG) ", text, re.MULTILINE)
    assert "symbolic link not followed" in text  # -vv: each skip, with its reason
    assert "uploaded f0.bin" in text
    assert re.search(r"WARNING sharelift.engine: failed: huge.bin: .*did not answer within", text)
    assert re.search(r"job 1 round 1: \d+ migrated .* reports in ", text)  # the summary
    assert re.search(r"retrying \w+ https://127\.0\.0\.1:\d+/v1\.0/", text)  # a 5xx, retried
    # Upload URLs are on the drive's SharePoint host; only the host is ever written.
    assert re.search(r"PUT https://[a-z0-9.-]+(:\d+)?/… \(upload URL\) -> 20[12]", text)
    summary = (reports / "SummaryReport.csv").read_text(encoding="utf-8-sig").splitlines()
    (row,) = list(csv.DictReader(summary))
    assert row["Log Path"] == str(log)

    uploads = _upload_paths(server)
    assert uploads, "no upload session was used"
    outputs = {
        "log": text,
        "stderr": done.stderr,
        "stdout": done.stdout,
        **{p.name: p.read_text(encoding="utf-8-sig") for p in reports.iterdir()},
    }
    for name, output in outputs.items():
        assert secret not in output, name
        assert "eyJ" not in output, f"a token in {name}"  # every JWT starts so
        assert "Bearer " not in output, name
        # Every upload URL carries its credential in `tempauth`: no trace of one anywhere.
        for needle in ("tempauth", "uploadSession?", "sig=", "client_secret="):
            assert needle not in output, (needle, name)


def test_an_unwritable_log_file_is_one_line_naming_it(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"a.txt": b"a"})
    code = main(
        [
            "migrate", str(src), "onedrive:megan@contoso.com/X", "--emulator",
            str(server.data_dir), "--state", str(tmp_path / "s.db"), "--quiet",
            "--log-file", str(tmp_path / "no" / "such" / "folder" / "run.log"),
        ]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--log-file" in err and "run.log" in err
