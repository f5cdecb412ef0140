"""Azurite, Microsoft's Azure Storage emulator, as the Migration API's blob and queue storage.

`Azurite(data_dir, cert, key).start()` finds the `azurite` executable (PATH, then the project's
`node_modules/.bin`, then the user cache folder), installs the pinned release into the user
cache folder with npm if it is nowhere, and starts its blob and queue services on free ports of
127.0.0.1 over HTTPS with the emulator's own certificate: SharePoint's SAS tokens carry
`spr=https`, and Azurite refuses such a SAS over plain HTTP (AuthorizationProtocolMismatch).

The storage account is generated once per tenant (`azurite/account.json`, 0600) and handed to
Azurite through `AZURITE_ACCOUNTS`, which replaces the well-known `devstoreaccount1` and its
published key. Azurite keeps its data in `data_dir/azurite/`. Telemetry is off; the API-version
check is skipped so that newer SDKs work against this release.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sharelift.emulator.certs import write_private
from sharelift.errors import EmulatorError

AZURITE_VERSION = "3.35.0"
"""The last release that runs on Node 20 (3.36.0 needs Node 22)."""
_START_TIMEOUT_S = 60.0
_LISTENING = re.compile(r"Azurite (Blob|Queue) service is successfully listening at (\S+)")


@dataclass(frozen=True)
class StorageAccount:
    """The tenant's storage account in Azurite: a name and a base64 key."""

    name: str
    key: str


def load_or_create_account(folder: Path, tenant: str) -> StorageAccount:
    """The account stored in `folder/account.json`, generated (0600) on first use."""
    path = folder / "account.json"
    if path.exists():
        try:
            raw = json.loads(path.read_text("utf-8"))
            return StorageAccount(name=str(raw["name"]), key=str(raw["key"]))
        except (OSError, ValueError, KeyError) as exc:
            raise EmulatorError(f"{path}: unreadable storage account ({exc})") from exc
    folder.mkdir(parents=True, exist_ok=True)
    # Account names are 3-24 lower-case letters and digits.
    stem = re.sub(r"[^a-z0-9]", "", tenant.lower())[:12] or "tenant"
    account = StorageAccount(
        name=f"{stem}mig{secrets.token_hex(4)}",
        key=base64.b64encode(secrets.token_bytes(64)).decode("ascii"),
    )
    write_private(path, json.dumps(account.__dict__).encode())
    return account


def _project_bin() -> list[Path]:
    """`node_modules/.bin` of the source checkout and of the working folder."""
    checkout = Path(__file__).resolve().parents[4]
    return [checkout / "node_modules" / ".bin", Path.cwd() / "node_modules" / ".bin"]


def cache_prefix() -> Path:
    """Where sharelift installs Azurite when it finds none."""
    return Path(platformdirs.user_cache_dir("sharelift")) / f"azurite-{AZURITE_VERSION}"


def find_azurite() -> Path | None:
    """The `azurite` executable: on PATH, in the project's node_modules, or in the cache."""
    found = shutil.which("azurite")
    if found:
        return Path(found)
    for folder in [*_project_bin(), cache_prefix() / "node_modules" / ".bin"]:
        candidate = folder / "azurite"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def install_azurite() -> Path:
    """Install the pinned Azurite into the user cache with npm; return its executable.

    Raises EmulatorError (one line) when npm is missing or the install fails.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise EmulatorError(
            f"the Migration API needs Azurite {AZURITE_VERSION} and npm is not installed: "
            "install Node.js and npm, or run `npm install azurite@" + AZURITE_VERSION + "`"
        )
    prefix = cache_prefix()
    prefix.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            f"azurite@{AZURITE_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    executable = prefix / "node_modules" / ".bin" / "azurite"
    if result.returncode != 0 or not executable.exists():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise EmulatorError(f"npm could not install azurite@{AZURITE_VERSION}: {last}")
    return executable


class Azurite:
    """One Azurite process serving blobs and queues for one emulator tenant.

    `start()` blocks until both services listen (or raises EmulatorError); `stop()` ends the
    process and is idempotent. The endpoints are path-style (`https://127.0.0.1:PORT/ACCOUNT`).
    """

    def __init__(self, data_dir: Path, tenant: str, cert: Path, key: Path) -> None:
        self.folder = data_dir / "azurite"
        self.account = load_or_create_account(self.folder, tenant)
        self._cert, self._key = cert, key
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.blob_port = 0
        self.queue_port = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def blob_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.blob_port}/{self.account.name}"

    @property
    def queue_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.queue_port}/{self.account.name}"

    def connection_string(self) -> str:
        """An account-key connection string (holds the key: never log it)."""
        return (
            f"DefaultEndpointsProtocol=https;AccountName={self.account.name};"
            f"AccountKey={self.account.key};BlobEndpoint={self.blob_endpoint};"
            f"QueueEndpoint={self.queue_endpoint};"
        )

    def start(self) -> None:
        """Start Azurite unless it runs already (installing it first if needed)."""
        with self._lock:
            if self.running:
                return
            executable = find_azurite() or install_azurite()
            data = self.folder / "data"
            data.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ)
            env["AZURITE_ACCOUNTS"] = f"{self.account.name}:{self.account.key}"
            args = [
                str(executable),
                "--location",
                str(data),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                "0",
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                "0",
                "--cert",
                str(self._cert),
                "--key",
                str(self._key),
                "--disableTelemetry",
                "--skipApiVersionCheck",
            ]
            try:
                process = subprocess.Popen(
                    args,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise EmulatorError(f"cannot run {executable}: {exc.strerror}") from exc
            self._process = process
            try:
                self._wait_listening(process)
            except EmulatorError:
                self._terminate()
                raise

    def _wait_listening(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        ports: dict[str, int] = {}
        seen: list[str] = []
        deadline = time.monotonic() + _START_TIMEOUT_S
        while len(ports) < 2 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
            match = _LISTENING.search(line)
            if match:
                url = match.group(2)
                if not url.startswith("https://"):
                    raise EmulatorError(f"Azurite did not start with TLS ({url})")
                ports[match.group(1)] = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        if len(ports) < 2:
            last = seen[-1] if seen else "no output"
            raise EmulatorError(f"Azurite did not start: {last}")
        self.blob_port, self.queue_port = ports["Blob"], ports["Queue"]
        # Keep reading its output, or a chatty Azurite would block on a full pipe.
        threading.Thread(target=_drain, args=(process,), daemon=True, name="azurite").start()

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def stop(self) -> None:
        """End the Azurite process (its data stays). Idempotent."""
        with self._lock:
            self._terminate()


def _drain(process: subprocess.Popen[str]) -> None:
    stream = process.stdout
    if stream is None:
        return
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):  # closed by stop()
        return
