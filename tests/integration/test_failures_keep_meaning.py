"""Failures that keep their meaning, end to end against the emulator: access denied while
resolving the target is a sign-in problem (exit 3), a folder lookup that fails is not taken for
a folder that does not exist, and one job's unexpected error fails that job only."""

from __future__ import annotations

import csv
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

import sharelift.job
from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer
from sharelift.errors import AuthError
from sharelift.graph.client import GraphClient
from sharelift.graph.pacer import Pacer
from sharelift.job import Endpoints, MigrateRequest, run_job
from sharelift.target import parse_target
from support.emulator_http import EmulatorTransport

TEAM = "https://contoso.sharepoint.com/sites/Team"


def _source(root: Path, name: str = "src") -> Path:
    src = root / name
    src.mkdir(parents=True)
    (src / "one.txt").write_text(f"one of {name}")
    return src


def test_access_denied_while_resolving_exits_3_with_the_cause(
    emulator: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A token for SharePoint's admin host, not for Graph: Graph answers 401 (invalid audience).
    from sharelift.credential import Credential

    admin_scope = emulator.info["sharepoint_admin_scope"]
    token = Credential.from_secret(emulator=emulator.data_dir).token([admin_scope])
    monkeypatch.setenv("SHARELIFT_ACCESS_TOKEN", token)
    code = main(
        [
            "migrate",
            str(_source(tmp_path)),
            "onedrive:megan@contoso.com/Denied",
            "--auth",
            "token",
            "--emulator",
            str(emulator.data_dir),
            "--state",
            str(tmp_path / "state.db"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3, err
    assert "access denied" in err and "HTTP 401" in err and "Invalid audience" in err


class _DenyLookup(httpx.AsyncBaseTransport):
    """The emulator over real TLS, except that looking up `path` is answered 403."""

    def __init__(self, info: dict[str, Any], path: str) -> None:
        context = ssl.create_default_context(cafile=info["ca_file"])
        self._inner = EmulatorTransport(info, verify=context, http2=True)
        self._path = path
        self.denied = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith(self._path):
            self.denied += 1
            body = {"error": {"code": "accessDenied", "message": "Access denied"}}
            return httpx.Response(403, json=body)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.anyio
async def test_include_root_lookup_failure_is_not_taken_for_a_missing_folder(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """`--include-root` looks the source folder up below the target; a 403 there is an access
    problem to report, not a folder to create."""
    from sharelift.credential import Credential

    credential = Credential.from_secret(emulator=emulator.data_dir)
    info = emulator.info
    source = _source(tmp_path, "Kept")
    transport = _DenyLookup(info, "root:/IncludeRoot/Kept")
    request = MigrateRequest(
        source=str(source),
        target=parse_target("onedrive:megan@contoso.com/IncludeRoot"),
        endpoints=Endpoints(info["graph_url"], info["graph_scope"], info["ca_file"]),
        state_path=tmp_path / "state.db",
        include_root=True,
    )
    async with GraphClient(
        token=lambda: credential.token(),
        base_url=info["graph_url"],
        pacer=Pacer(),
        transport=transport,
        verify=info["ca_file"],
        connect=info["connect"],
    ) as client:
        with pytest.raises(AuthError, match="access denied") as caught:
            await run_job(request, credential, client=client)
    assert transport.denied >= 1
    assert caught.value.__cause__ is not None and "403" in str(caught.value.__cause__)
    assert not (tmp_path / "state.db").exists()  # nothing started


def test_one_jobs_unexpected_error_fails_that_job_only(
    emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Row 2's reports fail to be written after its round (the disk filled up): an OSError,
    not a ShareliftError. Row 2 is recorded as failed with the cause; rows 1 and 3 finish.
    (A report folder that cannot be written at all is refused before any upload: the
    catalogue of bad inputs, test_bad_inputs.py.)"""
    rows = [f"{_source(tmp_path, f'share{n}')},,,{TEAM},Documents,Groups/{n}" for n in (1, 2, 3)]
    job_file = tmp_path / "jobs.csv"
    job_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    reports = tmp_path / "reports"
    write = sharelift.job.write_round_reports

    def disk_full(store: Any, job: Any, rnd: Any, folder: Path) -> Any:
        if folder.name == "row-2":
            raise OSError(28, "No space left on device", str(folder))
        return write(store, job, rnd, folder)

    monkeypatch.setattr(sharelift.job, "write_round_reports", disk_full)
    code = main(
        [
            "migrate",
            "--jobs",
            str(job_file),
            "--emulator",
            str(emulator.data_dir),
            "--state",
            str(tmp_path / "state.db"),
            "--report",
            str(reports),
            "--quiet",
        ]
    )
    assert code == 1, capsys.readouterr().err
    text = (reports / "SummaryReport.csv").read_text(encoding="utf-8-sig")
    by_job = {row["Job"]: row for row in csv.DictReader(text.splitlines())}
    assert by_job["jobs.csv#1"]["Status"] == "completed"
    assert by_job["jobs.csv#3"]["Status"] == "completed"
    assert by_job["jobs.csv#2"]["Status"] == "failed"
    assert "OSError: [Errno 28] No space left on device" in by_job["jobs.csv#2"]["Message"]
    drive = next(
        d["id"] for d in emulator.info["drives"] if d["webUrl"] == f"{TEAM}/Shared%20Documents"
    )
    for n in (1, 3):
        got = graph.get(f"/drives/{drive}/root:/Groups/{n}/one.txt:/content", follow_redirects=True)
        assert got.content == f"one of share{n}".encode()
