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
