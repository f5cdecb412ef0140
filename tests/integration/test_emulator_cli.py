"""`sharelift emulator` as a user runs it: in its own process, stopped with Ctrl-C."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sharelift.cli import main


@pytest.mark.slow
def test_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    data = tmp_path / "tenant"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "sharelift", "emulator", "--data", str(data)),
            *("--latency-ms", "1", "--fault-seed", "42", "--no-office-enrichment"),
            *("--replace-not-found-rate", "0.5"),
            *("--never-answer", "host:login.microsoftonline.com"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (data / "emulator.json").exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        info = json.loads((data / "emulator.json").read_text())
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with httpx.Client(verify=ctx) as client:
            r = client.get(f"{info['authority']}/v2.0/.well-known/openid-configuration")
            assert r.status_code == 200
            faults = client.get(
                f"{info['base_url']}/_emulator/faults",
                headers={"X-Emulator-Key": info["admin_key"]},
            ).json()
            assert (faults["latency_ms"], faults["seed"]) == (1, 42)
            assert faults["office_enrichment"] is False
            assert faults["replace_not_found_rate"] == 0.5
            assert faults["never_answer"] == "host:login.microsoftonline.com"
            assert set(info["connect"].values()) == {info["base_url"].removeprefix("https://")}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert info["base_url"] in out
    assert info["ca_file"] in out
    assert str(data / "emulator.json") in out
    assert info["client_secret"] not in out + err


def test_emulator_command_rejects_bad_faults(tmp_path: Path) -> None:
    assert main(["emulator", "--data", str(tmp_path), "--error-rate", "2"]) == 2
    assert main(["emulator", "--data", str(tmp_path), "--fault-seed", "-1"]) == 2
    assert main(["emulator", "--data", str(tmp_path), "--replace-not-found-rate", "1.5"]) == 2
    assert main(["emulator", "--data", str(tmp_path), "--never-answer", "sometimes"]) == 2
    assert not (tmp_path / "emulator.json").exists()
