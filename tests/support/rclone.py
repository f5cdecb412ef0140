"""rclone's OneDrive backend (the Debian build) pointed at an emulator, for tests that check
a migration with a real third-party client (`rclone check`).

rclone only talks to `https://graph.microsoft.com/v1.0`, so it reaches the emulator through a
TLS-intercepting CONNECT proxy (`HTTPS_PROXY`) whose certificates the emulator's CA signs
(`--ca-cert`). Its config names a OneDrive for Business drive by id and carries an app token
whose expiry lies far ahead, so rclone never tries to refresh it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sharelift.emulator.server import EmulatorServer
from support.connect_proxy import ConnectProxy

_LSL = re.compile(r"^\s*(\d+) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{9}) (.+)$")


@dataclass
class Rclone:
    """Runs `rclone` against the emulator: remote `od:` is a user's OneDrive."""

    config: Path
    ca_file: Path
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [
            "rclone",
            "--config",
            str(self.config),
            "--ca-cert",
            str(self.ca_file),
            "--low-level-retries",
            "2",
            "--retries",
            "1",
            "-v",
            *args,
        ]
        done = subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if check:
            assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr}"
        return done

    def lsl(self, remote: str) -> dict[str, tuple[int, str]]:
        """path -> (size, modification time to the second, UTC) from `rclone lsl`."""
        out: dict[str, tuple[int, str]] = {}
        for line in self("lsl", remote).stdout.splitlines():
            match = _LSL.match(line)
            assert match, f"unexpected lsl line {line!r}"
            out[match[4]] = (int(match[1]), match[2])
        return out


@contextlib.contextmanager
def rclone_for(
    server: EmulatorServer, token: str, home: Path, drive_id: str | None = None
) -> Iterator[Rclone]:
    """rclone whose remote `od:` is a OneDrive of `server` (the first user's, or
    `drive_id`), with `token` (an app token); its config and HOME in `home`."""
    info = server.info
    drive_id = drive_id or next(u["drive_id"] for u in info["users"] if u["drive_id"])
    ca_file = Path(info["ca_file"])
    saved = {
        "access_token": token,
        "token_type": "Bearer",
        "refresh_token": "unused",  # rclone wants one; the expiry below means it never uses it
        "expiry": "2099-01-01T00:00:00Z",
    }
    config = home / "rclone.conf"
    config.write_text(
        "[od]\n"
        "type = onedrive\n"
        f"client_id = {info['client_id']}\n"
        f"client_secret = {info['client_secret']}\n"
        f"drive_id = {drive_id}\n"
        "drive_type = business\n"
        f"token = {json.dumps(saved)}\n",
        encoding="utf-8",
    )
    with ConnectProxy(
        ca_cert=ca_file,
        ca_key=server.data_dir / "ca-key.pem",
        upstream=("127.0.0.1", server.port),
        upstream_ca=ca_file,
    ) as proxy:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.upper().endswith("_PROXY") and not key.startswith("RCLONE_")
        }
        env.update(HTTPS_PROXY=proxy.url, TZ="UTC", HOME=str(home))
        yield Rclone(config=config, ca_file=ca_file, env=env)
        # Graph, and the OneDrive's SharePoint host where upload and download URLs point
        assert proxy.hosts <= {"graph.microsoft.com", "contoso-my.sharepoint.com"}
        assert "graph.microsoft.com" in proxy.hosts
