"""The public Python API against the emulator: scan, migrate and migrate_async with progress
subscribers and a stop event, every Credential constructor, the Emulator, the error tree, and
an `import sharelift` that stays light."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import sharelift
import sharelift.errors
from sharelift import Credential
from sharelift.emulator import Emulator
from sharelift.emulator.server import EmulatorServer


@pytest.fixture
def credential(emulator: EmulatorServer) -> Iterator[Credential]:
    made = Credential.from_secret(emulator=emulator.data_dir)
    yield made
    made.close()


def _share(root: Path, files: int = 3) -> Path:
    share = root / "share"
    (share / "sub").mkdir(parents=True)
    for n in range(files):
        (share / "sub" / f"f{n}.txt").write_text(f"file {n}")
    (share / "a: b.txt").write_text("renamed on the way")
    return share


# --- the surface -------------------------------------------------------------------------------


def test_import_sharelift_stays_light() -> None:
    code = (
        "import sys, sharelift\n"
        "heavy = ('httpx', 'msal', 'rich', 'requests', 'starlette', 'cryptography', 'numpy')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_everything_public_is_exported_and_typed() -> None:
    for name in sharelift.__all__:
        assert getattr(sharelift, name) is not None, name
    for function in (sharelift.scan, sharelift.migrate, sharelift.migrate_async):
        hints = inspect.signature(function)
        assert hints.return_annotation != inspect.Signature.empty
        assert function.__doc__
    migrate = inspect.signature(sharelift.migrate).parameters
    assert migrate["credential"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(AttributeError):
        _ = sharelift.no_such_thing  # type: ignore[attr-defined]


def test_the_error_tree_draws_every_error() -> None:
    import sharelift.graph.errors
    import sharelift.state

    def subclasses(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    tree = sharelift.errors.__doc__ or ""
    for cls in subclasses(sharelift.ShareliftError):
        assert re.search(rf"\b{cls.__name__}\b", tree), cls.__name__


# --- scan and migrate --------------------------------------------------------------------------


def test_scan_result_is_the_summary(tmp_path: Path) -> None:
    from sharelift.scanner import run_scan
    from sharelift.source import ScanOptions, TargetPrefix

    share = _share(tmp_path)
    result = sharelift.scan(share, "onedrive:megan@contoso.com", exclude=["f2.txt"])
    assert (result.files, result.filtered_out, result.renamed, result.to_be_migrated) == (
        4,
        1,
        1,
        4,
    )
    assert result.has_findings and result.findings == {"INVALID_CHARACTER": 1}
    prefix = TargetPrefix.parse("onedrive:megan@contoso.com")
    summary = run_scan(share, ScanOptions(exclude=("f2.txt",), target=prefix))
    timing = {"started", "finished", "duration_seconds", "target"}
    expected = {k: v for k, v in summary.to_dict().items() if k not in timing}
    assert {k: v for k, v in result.to_dict().items() if k not in timing} == expected
    json.dumps(result.to_dict())
    with pytest.raises(sharelift.OptionError) as bad:
        sharelift.scan(share, modified_after="yesterday")
    assert bad.value.option == "modified_after"
    with pytest.raises(sharelift.SourceError):
        sharelift.scan(tmp_path / "missing")


def test_migrate_with_several_subscribers_then_again(
    emulator: EmulatorServer,
    credential: Credential,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    share = _share(tmp_path)
    items: list[sharelift.ItemEvent] = []
    progress: list[sharelift.SnapshotEvent] = []

    def on_items(event: sharelift.ProgressEvent) -> None:
        if isinstance(event, sharelift.ItemEvent):
            items.append(event)

    def on_progress(event: sharelift.ProgressEvent) -> None:
        if isinstance(event, sharelift.SnapshotEvent):
            progress.append(event)

    def broken(event: sharelift.ProgressEvent) -> None:
        raise RuntimeError("a subscriber's own bug")

    options = {"state": tmp_path / "state.db", "workers": 2, "chunk_size": "320k"}
    first = sharelift.migrate(
        share,
        "onedrive:megan@contoso.com/Library",
        credential=credential,
        progress=[on_items, broken, on_progress],
        **options,
    )
    assert (first.status, first.uploaded, first.failed, first.ok) == ("completed", 4, 0, True)
    assert first.round == 1 and first.reports is not None
    assert (first.reports / "ItemReport.csv").exists()
    assert first.summary["count_of_files"] == 4
    assert sorted(e.path for e in items) == ["a: b.txt", *(f"sub/f{n}.txt" for n in range(3))]
    assert progress[-1].snapshot.files_done == 4 and progress[-1].snapshot.phase == "completed"
    failures = [r for r in caplog.records if r.name == "sharelift.progress"]
    assert failures and "progress subscriber failed" in failures[0].getMessage()
    again = sharelift.migrate(
        share, "onedrive:megan@contoso.com/Library", credential=credential, **options
    )
    assert (again.uploaded, again.unchanged, again.round) == (0, 4, 2)


def test_dry_run_tells_its_plan_and_changes_nothing(credential: Credential, tmp_path: Path) -> None:
    share = _share(tmp_path)
    lines: list[str] = []
    result = sharelift.migrate(
        share,
        "https://contoso.sharepoint.com/sites/Team/Shared Documents/DryRun",
        credential=credential,
        dry_run=True,
        state=tmp_path / "state.db",
        progress=[
            lambda e: lines.append(e.text) if isinstance(e, sharelift.MessageEvent) else None
        ],
    )
    assert result.status == "planned" and result.ok and result.uploaded == 0
    assert result.planned["upload"] == 4
    assert any("sub/f0.txt" in line for line in lines) and lines[-1].startswith("dry run")
    assert not (tmp_path / "state.db").exists()


@pytest.mark.anyio
@pytest.mark.slow
async def test_migrate_async_stops_gracefully_on_the_event(
    emulator: EmulatorServer, credential: Credential, tmp_path: Path
) -> None:
    share = _share(tmp_path, files=12)
    stop = asyncio.Event()
    target = "onedrive:alex@contoso.com/Stopped"
    emulator.set_faults(latency_ms=30)

    def stop_after_first(event: sharelift.ProgressEvent) -> None:
        if isinstance(event, sharelift.ItemEvent):
            stop.set()

    first = await sharelift.migrate_async(
        share,
        target,
        credential=credential,
        progress=[stop_after_first],
        stop=stop,
        state=tmp_path / "state.db",
        workers=1,
    )
    assert first.status == "interrupted" and not first.ok
    assert 1 <= first.uploaded < 13
    emulator.reset_faults()
    rest = await sharelift.migrate_async(
        share, target, credential=credential, state=tmp_path / "state.db"
    )
    assert rest.status == "completed" and rest.uploaded + first.uploaded == 13


def test_options_are_checked_before_anything_starts(credential: Credential, tmp_path: Path) -> None:
    share = _share(tmp_path)
    with pytest.raises(sharelift.OptionError) as bad:
        sharelift.migrate(share, "onedrive:megan@contoso.com/x", credential=credential, workers=0)
    assert bad.value.option == "workers" and str(bad.value) == "workers: must be at least 1, not 0"
    with pytest.raises(TypeError, match="wrokers"):
        sharelift.migrate(share, "onedrive:megan@contoso.com/x", credential=credential, wrokers=2)
    with pytest.raises(sharelift.OptionError, match="site and library go together"):
        sharelift.migrate(share, credential=credential, site="https://contoso.sharepoint.com")
    with pytest.raises(sharelift.TargetError, match="no OneDrive yet"):
        sharelift.migrate(
            share, "onedrive:nestor@contoso.com/x", credential=credential, state=tmp_path / "s.db"
        )


def test_spmt_triple_as_keywords(credential: Credential, tmp_path: Path) -> None:
    result = sharelift.migrate(
        _share(tmp_path),
        credential=credential,
        site="https://contoso.sharepoint.com/sites/Team",
        library="Documents",
        subfolder="Triple",
        state=tmp_path / "state.db",
    )
    assert result.target.endswith("/sites/Team/Shared%20Documents/Triple") and result.ok


# --- credentials -------------------------------------------------------------------------------


def test_certificate_and_token_credentials(emulator: EmulatorServer) -> None:
    by_certificate = Credential.from_certificate(emulator=emulator.data_dir)
    token = by_certificate.token()
    assert by_certificate.method == "certificate" and token.count(".") == 2
    by_token = Credential.from_token(f"Bearer {token}", emulator=emulator.data_dir)
    assert by_token.token() == token and token not in repr(by_token)
    with pytest.raises(sharelift.AuthError) as missing:
        Credential.from_token("", emulator=emulator.data_dir)
    assert missing.value.option == "access_token"
    with pytest.raises(sharelift.AuthError, match="invalid_client"):
        Credential.from_secret(secret="wrong", emulator=emulator.data_dir).token()
    with pytest.raises(sharelift.OptionError) as no_tenant:
        Credential.from_secret(client_id="c", secret="s")  # Microsoft 365: a tenant is needed
    assert no_tenant.value.option == "tenant"


@pytest.mark.slow
def test_device_code_asks_through_the_callback(tmp_path: Path) -> None:
    with Emulator(tmp_path / "tenant") as tenant:
        messages: list[str] = []

        def tell(message: str) -> None:
            messages.append(message)
            code = re.search(r"enter the code (\S+)", message)
            assert code is not None, message
            threading.Timer(0.1, tenant.approve_device_code, (code[1], "megan@contoso.com")).start()

        cache = tmp_path / "tokens.json"
        person = Credential.device_code(on_message=tell, cache=cache, emulator=tenant.data_dir)
        assert person.token() and len(messages) == 1
        assert person.accounts() == ["megan@contoso.com"]
        silent = Credential.device_code(on_message=None, cache=cache, emulator=tenant.data_dir)
        assert silent.token()  # from the cache, asking nobody
        nobody = Credential.device_code(on_message=None, emulator=tenant.data_dir)
        with pytest.raises(sharelift.AuthError, match="no terminal") as refused:
            nobody.token()
        assert refused.value.option == "auth"


def test_managed_identity(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    identity = emulator.info["managed_identity"]
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity["endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", identity["header"])
    system = Credential.managed_identity(emulator=emulator.data_dir)
    user = Credential.managed_identity(
        identity["user_assigned_client_id"], emulator=emulator.data_dir
    )
    assert system.token() and user.token() and system.token() != user.token()


def test_from_profile(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharelift.auth import save_profile

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with pytest.raises(sharelift.AuthError, match="no profile 'lab'"):
        Credential.from_profile("lab")
    save_profile("lab", {"emulator": str(emulator.data_dir), "auth": "certificate"})
    lab = Credential.from_profile("lab")
    assert lab.method == "certificate" and lab.cloud.name == "emulator" and lab.token()


# --- the emulator ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_emulator_async_with_and_its_parts(tmp_path: Path) -> None:
    async with Emulator() as tenant:
        folder = tenant.data_dir
        assert folder.is_dir() and tenant.ca_file.exists()
        assert tenant.graph_url == f"{tenant.base_url}/v1.0"
        megan = tenant.user("MEGAN@contoso.com")
        assert megan.drive_id and tenant.user("nestor@contoso.com").drive_id is None
        team = tenant.drive("https://contoso.sharepoint.com/sites/Team/Shared%20Documents")
        assert team.drive_type == "documentLibrary"
        with pytest.raises(KeyError):
            tenant.user("nobody@contoso.com")
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "hello.txt").write_text("hello")
        result = await sharelift.migrate_async(
            tmp_path / "src",
            "onedrive:megan@contoso.com/Hi",
            credential=tenant.credential,
            state=tmp_path / "state.db",
        )
        assert result.ok
        assert await asyncio.to_thread(tenant.read_file, megan.drive_id, "Hi/hello.txt") == b"hello"
        with pytest.raises(KeyError):
            await asyncio.to_thread(tenant.read_file, megan.drive_id, "Hi/none.txt")
        tenant.set_faults(latency_ms=5)
        assert tenant.stats()["requests"] > 0
        assert tenant.client_secret not in repr(tenant)
    assert not folder.exists()  # a temporary tenant goes with its emulator
    with pytest.raises(sharelift.EmulatorError):
        _ = tenant.graph_url
