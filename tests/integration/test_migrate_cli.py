"""`sharelift migrate` through the command line against the emulator: every TARGET form, the
sign-in methods, and the errors a user meets first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sharelift.auth import AuthSettings, build_credential
from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer
from sharelift.errors import AuthError

TEAM = "https://contoso.sharepoint.com/sites/Team"


def _drive(server: EmulatorServer, web_url: str) -> str:
    return next(d["id"] for d in server.info["drives"] if d["webUrl"] == web_url)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_text("one")
    (src / "sub" / "two.txt").write_text("two")
    return src


def _migrate(server: EmulatorServer, tmp_path: Path, *args: str) -> int:
    return main(
        [
            "migrate",
            str(_source(tmp_path)),
            *args,
            "--emulator",
            str(server.data_dir),
            "--state",
            str(tmp_path / "state.db"),
            "--quiet",
        ]
    )


TARGETS = [
    # (arguments, library webUrl, folder inside it)
    (
        ["https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents/Form1"],
        "https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents",
        "Form1",
    ),
    ([f"{TEAM}/Shared Documents/Form2/Deeper"], f"{TEAM}/Shared%20Documents", "Form2/Deeper"),
    (
        [
            f"{TEAM}/Shared%20Documents/Forms/AllItems.aspx?id=%2Fsites%2FTeam%2FShared%20"
            "Documents%2FForm3&viewid=0c7b"
        ],
        f"{TEAM}/Shared%20Documents",
        "Form3",
    ),
    ([f"{TEAM}/Archive/Form4"], f"{TEAM}/Archive", "Form4"),
    (
        ["--site", TEAM, "--library", "Documents", "--subfolder", "Form5/x"],
        f"{TEAM}/Shared%20Documents",
        "Form5/x",
    ),
    (["--site", TEAM + "/", "--library", "Archive"], f"{TEAM}/Archive", ""),
    (
        ["onedrive:alex@contoso.com/Form7"],
        "https://contoso-my.sharepoint.com/personal/alex_contoso_com/Documents",
        "Form7",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "library", "folder"), TARGETS)
def test_every_target_form(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    args: list[str],
    library: str,
    folder: str,
) -> None:
    assert _migrate(emulator, tmp_path, *args) == 0
    drive = _drive(emulator, library)
    prefix = f"{folder}/" if folder else ""
    got = graph.get(f"/drives/{drive}/root:/{prefix}sub/two.txt:/content", follow_redirects=True)
    assert got.status_code == 200 and got.content == b"two"


def test_drive_id_forms(emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path) -> None:
    drive = _drive(emulator, f"{TEAM}/Archive")
    assert _migrate(emulator, tmp_path, f"drive:{drive}/ById") == 0
    assert _migrate(emulator, tmp_path / "again", f"{drive}/ByBareId") == 0
    for folder in ("ById", "ByBareId"):
        assert graph.get(f"/drives/{drive}/root:/{folder}/one.txt").status_code == 200


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        (
            "onedrive:nestor@contoso.com/x",
            "no OneDrive yet (not provisioned); `sharelift provision",
        ),
        ("onedrive:nobody@contoso.com/x", "no user nobody@contoso.com in the tenant"),
        ("onedrive:diego@contoso.com/x", "diego@contoso.com has no licence that includes OneDrive"),
        (
            "https://contoso.sharepoint.com/sites/Nowhere/Shared Documents",
            "no site at https://contoso.sharepoint.com/sites/Nowhere; the nearest site that "
            "exists is https://contoso.sharepoint.com/",
        ),
        (
            "https://contoso.sharepoint.com/sites/Team/Nope/x",
            "the site https://contoso.sharepoint.com/sites/Team has no document library at "
            "/sites/Team/Nope/x (its libraries: Archive (/sites/Team/Archive), Documents "
            "(/sites/Team/Shared Documents))",
        ),
        (
            "https://fabrikam.sharepoint.com/sites/Team/Shared Documents",
            "fabrikam.sharepoint.com is not a SharePoint host of this tenant",
        ),
        ("drive:b!doesnotexist", "no drive"),
    ],
)
def test_unresolvable_targets_exit_4(
    emulator: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    needle: str,
) -> None:
    assert _migrate(emulator, tmp_path, target) == 4
    assert needle in capsys.readouterr().err


def test_missing_source_is_a_usage_error(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "migrate",
            str(tmp_path / "nope"),
            "onedrive:megan@contoso.com",
            "--emulator",
            str(emulator.data_dir),
            "--state",
            str(tmp_path / "s.db"),
        ]
    )
    assert code == 2
    assert "nope" in capsys.readouterr().err


def test_certificate_sign_in(emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path) -> None:
    assert (
        _migrate(emulator, tmp_path, "onedrive:adele@contoso.com/ByCert", "--auth", "certificate")
        == 0
    )
    drive = next(u["drive_id"] for u in emulator.info["users"] if u["upn"] == "adele@contoso.com")
    assert graph.get(f"/drives/{drive}/root:/ByCert/one.txt").status_code == 200


def test_pre_acquired_token(
    emulator: EmulatorServer,
    app_token: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHARELIFT_ACCESS_TOKEN", app_token(emulator))
    assert (
        _migrate(emulator, tmp_path, "onedrive:adele@contoso.com/ByToken", "--auth", "token") == 0
    )


def test_wrong_secret_exits_3_without_echoing_it(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not-the-secret-0123456789")
    code = _migrate(
        emulator, tmp_path, "onedrive:megan@contoso.com/x", "--secret-file", str(secret)
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "invalid_client" in err and "not-the-secret" not in err


@pytest.mark.slow
def test_device_code_sign_in_then_silent(emulator: EmulatorServer, tmp_path: Path) -> None:
    cache = tmp_path / "tokens" / "default.json"
    codes: list[str] = []

    def prompt(message: str) -> None:
        code = re.search(r"code ([A-Z0-9-]+)", message)
        assert code is not None, message
        codes.append(code.group(1))
        threading.Timer(
            0.2, emulator.approve_device_code, (code.group(1), "megan@contoso.com")
        ).start()

    settings = AuthSettings(
        method="device_code",
        authority=emulator.info["authority"],
        client_id=emulator.info["client_id"],
        ca_file=emulator.info["ca_file"],
        instance_discovery=False,
        cache_path=cache,
        interactive=True,
        prompt=prompt,
    )
    credential = build_credential(settings)
    token = credential.token([emulator.info["graph_scope"]])
    assert token and codes
    assert oct(cache.stat().st_mode & 0o777) == oct(0o600)
    # A new process (a new credential over the same cache) signs in silently.
    later = build_credential(
        AuthSettings(**{**settings.__dict__, "interactive": False, "prompt": prompt})
    )
    assert later.token([emulator.info["graph_scope"]])
    assert len(codes) == 1


def test_device_code_without_a_terminal_fails_fast(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    settings = AuthSettings(
        method="device_code",
        authority=emulator.info["authority"],
        client_id=emulator.info["client_id"],
        ca_file=emulator.info["ca_file"],
        instance_discovery=False,
        cache_path=tmp_path / "empty.json",
        interactive=False,
    )
    with pytest.raises(AuthError, match="no terminal"):
        build_credential(settings).token([emulator.info["graph_scope"]])


def test_unattended_cli_without_credentials_exits_3_at_once(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARELIFT_")}
    env["HOME"] = str(tmp_path)  # no saved profile, no token cache
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sharelift",
            "migrate",
            str(_source(tmp_path)),
            "onedrive:megan@contoso.com",
            "--emulator",
            str(emulator.data_dir),
            "--auth",
            "device_code",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert "no terminal" in proc.stderr


def test_status_and_report(
    emulator: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _migrate(emulator, tmp_path, "onedrive:megan@contoso.com/Status") == 0
    capsys.readouterr()
    assert main(["status", "--state", str(tmp_path / "state.db"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"status": "completed"' in out and '"done": ' in out
    assert (
        main(["report", "--state", str(tmp_path / "state.db"), "--out", str(tmp_path / "r")]) == 0
    )
    assert (tmp_path / "r" / "ItemReport.csv").read_text(encoding="utf-8-sig").count("\n") == 4


@pytest.mark.parametrize("user_assigned", [False, True])
def test_managed_identity_through_msal(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user_assigned: bool,
) -> None:
    # As on Azure App Service: the platform sets IDENTITY_ENDPOINT and IDENTITY_HEADER.
    mi = emulator.info["managed_identity"]
    monkeypatch.setenv("IDENTITY_ENDPOINT", mi["endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", mi["header"])
    extra = ["--managed-identity-client-id", mi["user_assigned_client_id"]] if user_assigned else []
    folder = f"ByIdentity{int(user_assigned)}"
    code = _migrate(
        emulator,
        tmp_path,
        f"onedrive:megan@contoso.com/{folder}",
        "--auth",
        "managed_identity",
        *extra,
    )
    assert code == 0
    drive = next(u["drive_id"] for u in emulator.info["users"] if u["upn"] == "megan@contoso.com")
    assert graph.get(f"/drives/{drive}/root:/{folder}/sub/two.txt").status_code == 200


def test_managed_identity_with_a_wrong_header_exits_3(
    emulator: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.info["managed_identity"]["endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    code = _migrate(
        emulator, tmp_path, "onedrive:megan@contoso.com/x", "--auth", "managed_identity"
    )
    assert code == 3
    assert "managed identity" in capsys.readouterr().err
