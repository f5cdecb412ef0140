"""Unattended runs against the emulator: no terminal and no credentials, overlapping runs of one
job (and of one job file), and a company network's TLS-inspecting proxy trusted via --ca-bundle."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer
from support.certs import make_ca
from support.connect_proxy import ConnectProxy

TEAM = "https://contoso.sharepoint.com/sites/Team"


def _source(tmp_path: Path, files: int = 3) -> Path:
    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (src / f"f{i}.txt").write_text(f"file {i}")
    return src


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARELIFT_")}
    env["HOME"] = str(tmp_path)
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


@pytest.mark.slow
def test_job_file_run_without_terminal_or_credentials_fails_fast(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    job_file = tmp_path / "jobs.csv"
    job_file.write_text(f"{_source(tmp_path)},,,{TEAM},Documents,Cron\n", encoding="utf-8")
    for auth in ("device_code", "token"):
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "sharelift",
                "migrate",
                "--jobs",
                str(job_file),
                "--emulator",
                str(emulator.data_dir),
                "--auth",
                auth,
                "--state",
                str(tmp_path / "state.db"),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_clean_env(tmp_path),
            timeout=60,
        )
        assert proc.returncode == 3, (auth, proc.stderr)
        assert time.monotonic() - started < 20
        assert "Traceback" not in proc.stderr
        expected = {"device_code": "no terminal", "token": "SHARELIFT_ACCESS_TOKEN"}[auth]
        assert expected in proc.stderr, proc.stderr


@pytest.mark.slow
def test_two_overlapping_runs_of_one_job(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _source(tmp_path, files=6)
    args = [
        "migrate",
        str(src),
        "onedrive:alex@contoso.com/Overlap",
        "--emulator",
        str(emulator.data_dir),
        "--state",
        str(tmp_path / "state.db"),
        "--workers",
        "1",
        "--quiet",
    ]
    locks = tmp_path / "state.db.locks"
    emulator.set_faults(latency_ms=150)
    codes: list[int] = []
    first = threading.Thread(target=lambda: codes.append(main(args)))
    first.start()
    deadline = time.monotonic() + 30
    while not (locks.is_dir() and any(locks.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.02)
    second = main(args)
    first.join(60)
    assert second == 75
    assert "is already running (pid " in capsys.readouterr().err
    assert codes == [0]
    emulator.reset_faults()
    assert main(args) == 0  # the lock went with the first run


def test_overlapping_runs_of_one_job_file(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sharelift.lock import RunLock, lock_path

    job_file = tmp_path / "nightly.csv"
    job_file.write_text(f"{_source(tmp_path)},,,{TEAM},Documents,Nightly\n", encoding="utf-8")
    state = tmp_path / "state.db"
    args = [
        "migrate",
        "--jobs",
        str(job_file),
        "--emulator",
        str(emulator.data_dir),
        "--state",
        str(state),
        "--quiet",
    ]
    import hashlib

    digest = hashlib.sha256(str(job_file.resolve()).encode()).hexdigest()[:24]
    with RunLock(lock_path(state, f"jobs-{digest}"), "the other run"):
        assert main(args) == 75
    assert "job file" in capsys.readouterr().err
    assert main(args) == 0


@pytest.mark.slow
def test_migration_through_a_tls_inspecting_proxy(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ca_cert, ca_key = make_ca(tmp_path)
    src = _source(tmp_path)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    args = [
        "migrate",
        str(src),
        "onedrive:adele@contoso.com/ViaProxy",
        "--emulator",
        str(emulator.data_dir),
        "--state",
        str(tmp_path / "state.db"),
        "--quiet",
    ]
    with ConnectProxy(
        ca_cert=ca_cert,
        ca_key=ca_key,
        upstream=("127.0.0.1", emulator.port),
        upstream_ca=Path(emulator.info["ca_file"]),
    ) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("https_proxy", proxy.url)
        # Without the proxy's CA the sign-in is refused, clearly, and nothing is uploaded.
        assert main(args) == 3
        assert "--ca-bundle" in capsys.readouterr().err
        emulator.reset_stats()
        assert main([*args, "--ca-bundle", str(ca_cert)]) == 0
        tunnels = len(proxy.connects)
        assert tunnels >= 2  # identity and Graph all went through it...
        # ...and so did the upload URLs, on the OneDrive's SharePoint host, with no token
        assert "contoso-my.sharepoint.com" in proxy.hosts
        stats = emulator.stats()
        assert stats["by_kind"]["upload"] >= 3 and stats["bearer_on_upload_urls"] == 0
        # NO_PROXY sends everything straight to the emulator, past the proxy: the emulator's
        # address, and its SharePoint hosts (reached through emulator.json's connect map).
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,.sharepoint.com")
        monkeypatch.setenv("no_proxy", "127.0.0.1,.sharepoint.com")
        (src / "later.txt").write_text("later")
        assert main([*args, "--ca-bundle", str(ca_cert)]) == 0
        assert len(proxy.connects) == tunnels
    drive = next(u["drive_id"] for u in emulator.info["users"] if u["upn"] == "adele@contoso.com")
    assert graph.get(f"/drives/{drive}/root:/ViaProxy/f2.txt").status_code == 200
    assert graph.get(f"/drives/{drive}/root:/ViaProxy/later.txt").status_code == 200


@pytest.mark.slow
def test_sigterm_stops_a_job_file_run_gracefully(emulator: EmulatorServer, tmp_path: Path) -> None:
    rows = []
    for n in range(3):
        src = tmp_path / f"share{n}"
        src.mkdir()
        for i in range(20):
            (src / f"f{i}.txt").write_text(f"{n}/{i}")
        rows.append(f"{src},,,{TEAM},Documents,Term/{n}")
    job_file = tmp_path / "jobs.csv"
    job_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    env = _clean_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    emulator.set_faults(latency_ms=100)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sharelift",
            "migrate",
            "--jobs",
            str(job_file),
            "--max-parallel-jobs",
            "1",
            "--workers",
            "1",
            "--emulator",
            str(emulator.data_dir),
            "--state",
            str(tmp_path / "state.db"),
            "--report",
            str(tmp_path / "reports"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    locks = tmp_path / "state.db.locks"
    deadline = time.monotonic() + 30
    while not (locks.is_dir() and any(locks.glob("job-*.lock"))) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(15)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "SIGTERM: finishing the files in flight" in err
    summary = (tmp_path / "reports" / "SummaryReport.csv").read_text(encoding="utf-8-sig")
    assert "interrupted" in summary and "stopped before this job started" in summary
