"""Nothing waits forever: a proxy that accepts connections and never answers, in front of sign-in
and of Graph. `sharelift migrate` gives up within a few timeouts, with one line that names the
host, the proxy from the environment and what to check, and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from migrate_helpers import migrate_command, write_tree

from sharelift.emulator.server import EmulatorServer
from support.silent_proxy import SilentProxy


def proxied_env(proxy: SilentProxy, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["HTTPS_PROXY"] = proxy.url
    env.update(extra)
    return env


def run(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    return done, time.monotonic() - began


@pytest.mark.slow  # a child process, three sign-in attempts each waiting out its timeout
def test_sign_in_through_a_proxy_that_never_answers_fails_fast_and_says_where(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"a"})
    command = migrate_command(emulator, tmp_path / "src", "silent", tmp_path / "state.db")
    command += ["--connect-timeout", "0.5", "--read-timeout", "0.5"]
    with SilentProxy() as proxy:
        done, took = run(command, proxied_env(proxy))
        assert proxy.accepted >= 1
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    host = f"127.0.0.1:{emulator.info['base_url'].rsplit(':', 1)[1]}"
    assert host in lines[0] and proxy.url in lines[0], lines[0]
    assert "did not answer within 0.5 s" in lines[0] and "check the proxy" in lines[0]
    assert took < 30, took


@pytest.mark.slow  # three attempts, each waiting out its timeout
def test_graph_through_a_proxy_that_never_answers_fails_fast_and_says_where(
    emulator: EmulatorServer, tmp_path: Path, app_token: Callable[..., str]
) -> None:
    """A token from elsewhere: no sign-in call, Graph is the first to meet the proxy."""
    write_tree(tmp_path / "src", {"a.txt": b"a"})
    command = migrate_command(emulator, tmp_path / "src", "silent", tmp_path / "state.db")
    command += ["--auth", "token", "--connect-timeout", "0.5", "--read-timeout", "0.5"]
    with SilentProxy() as proxy:
        env = proxied_env(proxy, SHARELIFT_ACCESS_TOKEN=app_token(emulator))
        done, took = run(command, env)
        assert proxy.accepted >= 1
    assert done.returncode == 75, done.stderr  # try again later
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    host = f"127.0.0.1:{emulator.info['base_url'].rsplit(':', 1)[1]}"
    assert host in done.stderr and proxy.url in done.stderr, done.stderr
    assert "within 0.5 s" in done.stderr
    assert took < 30, took


@pytest.mark.parametrize("flag", ["--connect-timeout", "--read-timeout"])
def test_a_timeout_must_be_a_positive_number(flag: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sharelift", "migrate", str(tmp_path), "drive:b!x", flag, "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "more than 0" in done.stderr


@pytest.mark.slow  # a child process, three sign-in attempts each waiting out its timeout
def test_sign_in_that_never_answers_fails_fast(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    """The emulator's own fault: the token endpoint takes the request and never answers."""
    server = emulator_factory()
    server.set_faults(never_answer="signin")
    write_tree(tmp_path / "src", {"a.txt": b"a"})
    command = migrate_command(server, tmp_path / "src", "Hang", tmp_path / "state.db")
    command += ["--connect-timeout", "0.5", "--read-timeout", "0.5"]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done, took = run(command, env)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "did not answer within 0.5 s" in done.stderr
    assert "(no proxy)" in done.stderr
    assert took < 30, took


@pytest.mark.slow
@pytest.mark.parametrize(
    ("selector", "target", "host"),
    [
        ("upload-url", "onedrive:megan@contoso.com/Hang", "contoso-my.sharepoint.com"),
        ("path:*/_layouts/15/download.aspx",
         "https://contoso.sharepoint.com/sites/Team/Shared Documents/Hang",
         "contoso.sharepoint.com"),
    ],
    ids=["upload URL", "the proof's download"],
)  # fmt: skip
def test_upload_and_download_urls_that_never_answer_fail_the_file_not_the_run(
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
    selector: str,
    target: str,
    host: str,
) -> None:
    """Each file whose upload (or, for an Office file in a library, whose proof's download)
    gets no answer fails within a few timeouts, its message naming the host and no more of
    the URL; the run ends."""
    from sharelift.cli import main
    from sharelift.emulator.samples import office_file
    from sharelift.state import open_state

    server = emulator_factory()
    server.set_faults(never_answer=selector, replace_not_found_rate=0.0)
    src = tmp_path / "src"
    write_tree(src, {"a.docx": office_file("docx", seed=1), "b.docx": office_file("docx", seed=2)})
    began = time.monotonic()
    code = main(
        [
            "migrate", str(src), target, "--emulator", str(server.data_dir),
            "--state", str(tmp_path / "s.db"), "--quiet",
            "--connect-timeout", "0.5", "--read-timeout", "0.5",
        ]
    )  # fmt: skip
    assert code == 1
    assert time.monotonic() - began < 90
    with open_state(tmp_path / "s.db") as store:
        failed = [i for i in store.items(store.jobs()[0].id) if i.status == "failed"]
    assert len(failed) == 2
    for item in failed:
        message = item.error_message or ""
        assert f"{host} did not answer within 0.5 s" in message, message
        assert "/personal/" not in message and "_api" not in message and "tempauth" not in message
