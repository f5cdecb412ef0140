"""`sharelift provision` and `migrate --jobs --provision` against the emulator: batches of 200,
delayed creation, users who already have a OneDrive, unknown and unlicensed users, re-runs."""

from __future__ import annotations

import csv
import json
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer

TEAM = "https://contoso.sharepoint.com/sites/Team"


def _users_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "tenant-users.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["upn", "display_name", "licensed", "onedrive"])
        for i in range(n):
            writer.writerow([f"user{i:03d}@contoso.com", f"User {i}", "true", "false"])
        writer.writerow(["has.one@contoso.com", "Has One", "true", "true"])
        writer.writerow(["nolicence@contoso.com", "No Licence", "false", "false"])
    return path


def _record_batches(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = server.provisioner.enqueue

    def enqueue(upns: list[str]) -> None:
        sizes.append(len(upns))
        original(upns)

    monkeypatch.setattr(server.provisioner, "enqueue", enqueue)
    return sizes


@pytest.mark.slow
def test_provision_450_users_in_three_batches(
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = emulator_factory(provisioning_delay_s=0.6, users_file=_users_file(tmp_path, 450))
    sizes = _record_batches(server, monkeypatch)
    users = tmp_path / "wave1.csv"
    lines = ["UserPrincipalName"] + [f"user{i:03d}@contoso.com" for i in range(450)]
    users.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    # SharePoint REST accepts app-only tokens got with a certificate only.
    base = ["--emulator", str(server.data_dir), "--auth", "certificate"]
    base += ["--poll-interval", "0.2", "--json"]
    extra = ["has.one@contoso.com", "nolicence@contoso.com", "ghost@contoso.com"]

    code = main(["provision", *extra, "--users", str(users), *base])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1  # two users failed
    assert sizes == [200, 200, 50]
    by_upn = {u["upn"]: u for u in doc["users"]}
    assert len(by_upn) == 453
    assert by_upn["has.one@contoso.com"]["status"] == "ready"
    assert not by_upn["has.one@contoso.com"]["requested"]
    assert by_upn["ghost@contoso.com"]["status"] == "failed"
    assert "no such user" in by_upn["ghost@contoso.com"]["message"]
    assert by_upn["nolicence@contoso.com"]["status"] == "failed"
    assert "licence" in by_upn["nolicence@contoso.com"]["message"]
    ready = [u for u in doc["users"] if u["status"] == "ready" and u["requested"]]
    assert len(ready) == 450 and all(u["drive_id"] for u in ready)

    # Running it again asks for nothing and reports everyone ready.
    code = main(["provision", "--users", str(users), *base])
    assert code == 0 and sizes == [200, 200, 50]
    assert {u["status"] for u in json.loads(capsys.readouterr().out)["users"]} == {"ready"}


@pytest.mark.slow
def test_pending_when_creation_outlasts_the_timeout(
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = emulator_factory(provisioning_delay_s=30, users_file=_users_file(tmp_path, 2))
    code = main(
        [
            "provision",
            "user000@contoso.com",
            "user001@contoso.com",
            "--emulator",
            str(server.data_dir),
            "--auth",
            "certificate",
            "--provision-timeout",
            "0.5",
            "--poll-interval",
            "0.2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 75
    assert "pending  user000@contoso.com (requested, not created within 0.5 s" in out
    assert "0 ready, 2 pending, 0 failed" in out


@pytest.mark.slow
def test_jobs_into_onedrives_provisioned_on_the_fly(
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = emulator_factory(provisioning_delay_s=0.5, users_file=_users_file(tmp_path, 4))
    rows = []
    for i in range(4):
        home = tmp_path / "homes" / f"user{i:03d}"
        home.mkdir(parents=True)
        (home / "cv.docx").write_text(f"cv {i}")
        rows.append(
            f"{home},,,https://contoso-my.sharepoint.com/personal/user{i:03d}_contoso_com,"
            "Documents,Home"
        )
    team_src = tmp_path / "team"
    team_src.mkdir()
    (team_src / "t.txt").write_text("t")
    rows.append(f"{team_src},,,{TEAM},Documents,NoWait")  # needs no provisioning
    rows.append(
        f"{team_src},,,https://contoso-my.sharepoint.com/personal/nolicence_contoso_com,Documents,"
    )
    job_file = tmp_path / "homes.csv"
    job_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code = main(
        [
            "migrate",
            "--jobs",
            str(job_file),
            "--provision",
            "--poll-interval",
            "0.2",
            "--emulator",
            str(server.data_dir),
            "--auth",
            "certificate",
            "--state",
            str(tmp_path / "state.db"),
            "--report",
            str(tmp_path / "reports"),
            "--quiet",
        ]
    )
    assert code == 1  # the unlicensed user's job could not start
    summary = list(
        csv.DictReader(
            (tmp_path / "reports" / "SummaryReport.csv")
            .read_text(encoding="utf-8-sig")
            .splitlines()
        )
    )
    statuses = [r["Status"] for r in summary[:-1]]
    assert statuses == ["completed"] * 5 + ["failed"]
    assert "licence" in summary[5]["Message"]
    info = json.loads((server.data_dir / "emulator.json").read_text(encoding="utf-8"))
    ca = info["ca_file"]
    token = _token(info)
    verify = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=str(info["graph_url"]), verify=verify, timeout=30) as graph:
        for i in range(4):
            got = graph.get(
                f"/users/user{i:03d}@contoso.com/drive/root:/Home/cv.docx",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert got.status_code == 200, got.text


def _token(info: dict[str, object]) -> str:
    from sharelift.auth import AuthSettings, build_credential

    credential = build_credential(
        AuthSettings(
            method="secret",
            authority=str(info["authority"]),
            client_id=str(info["client_id"]),
            secret=str(info["client_secret"]),
            ca_file=str(info["ca_file"]),
            instance_discovery=False,
        )
    )
    return credential.token([str(info["graph_scope"])])


@pytest.mark.slow
def test_provision_the_onedrive_targets_of_a_job_file(
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = emulator_factory(provisioning_delay_s=0.3, users_file=_users_file(tmp_path, 3))
    sizes = _record_batches(server, monkeypatch)
    my = "https://contoso-my.sharepoint.com/personal"
    job_file = tmp_path / "homes.csv"
    job_file.write_text(
        "\n".join(
            [
                f"\\\\fs01\\homes\\u0,,,{my}/user000_contoso_com/,Documents,",
                f"\\\\fs01\\homes\\u1,,,{my}/user001_contoso_com,Documents,H",
                f"\\\\fs01\\homes\\x,,,{my}/has_one_contoso_com,Documents,",
                f"\\\\fs01\\team,,,{TEAM},Documents,",  # not a OneDrive: not provisioned
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    base = ["--emulator", str(server.data_dir), "--auth", "certificate", "--poll-interval", "0.1"]
    # Sources on a Windows share need no mapping: only the targets are read.
    assert main(["provision", "--jobs", str(job_file), "--no-wait", *base]) == 75
    out = capsys.readouterr().out
    assert sizes == [2]
    assert "ready    has.one@contoso.com" in out and "1 ready, 2 pending, 0 failed" in out
    assert main(["provision", "--jobs", str(job_file), *base]) == 0
    assert "3 ready, 0 pending, 0 failed" in capsys.readouterr().out


@pytest.mark.slow
def test_sharepoint_rest_with_an_app_secret_is_refused_before_anything_starts(
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
    app_token: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SharePoint REST refuses app-only tokens got with a client secret (the emulator too:
    401 "Unsupported app only token"): `provision` says so in one line, before a request."""
    server = emulator_factory(users_file=_users_file(tmp_path, 2))
    base = ["--emulator", str(server.data_dir)]
    server.reset_stats()
    for auth in (["--auth", "secret"], []):  # with the emulator, secret is the default
        assert main(["provision", "user000@contoso.com", *base, *auth]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--auth" in err, err
        assert "refuses app-only tokens got with a client secret" in err
        assert "certificate" in err
    # A token got elsewhere says how it was got (appidacr): one from a secret is refused too,
    # one from the certificate goes through.
    monkeypatch.setenv("SHARELIFT_ACCESS_TOKEN", app_token(server))
    assert main(["provision", "user000@contoso.com", *base, "--auth", "token"]) == 2
    assert "client secret" in capsys.readouterr().err
    assert set(server.stats()["by_kind"]) == {"identity"}  # the token above; no sharelift call
    job_file = tmp_path / "homes.csv"
    my = "https://contoso-my.sharepoint.com/personal"
    job_file.write_text(f"{tmp_path},,,{my}/user000_contoso_com,Documents,\n", encoding="utf-8")
    state = ["--state", str(tmp_path / "s.db")]
    assert main(["migrate", "--jobs", str(job_file), "--provision", *base, *state]) == 2
    assert "--provision calls SharePoint REST" in capsys.readouterr().err
    assert main(
        ["provision", "user000@contoso.com", *base, "--auth", "certificate", "--no-wait"]
    ) in (0, 75)
