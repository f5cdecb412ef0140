"""Office files into a SharePoint library, which rewrites them as it stores them (the emulator
does, as SharePoint does): proved part by part, recorded with what the target stores, free on
the next run; a rewrite that is not SharePoint's fails the proof; a binary Office file is not
claimed proved; a crash after the commit is repaired by proof, not by sending it again; a
refused replacement or deletion goes aside; the proof's downloads go through the proxy, with
no token."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from migrate_helpers import UNIT, graph_client, write_tree

from sharelift.cli import main
from sharelift.emulator.samples import office_file
from sharelift.emulator.server import EmulatorServer
from sharelift.engine import Engine
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.pacer import Pacer
from sharelift.graph.types import DriveItem
from sharelift.graph.uploads import FragmentResult
from sharelift.state import open_state
from sharelift.target import parse_target, resolve_target
from support.certs import make_ca
from support.connect_proxy import ConnectProxy
from support.office import compound_file, doc_summary_stream

TEAM = "https://contoso.sharepoint.com/sites/Team/Shared Documents"


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    server = emulator_factory()
    server.set_faults(replace_not_found_rate=0.0)
    return server


@pytest.fixture
def graph(server: EmulatorServer, app_token: Callable[..., str]) -> Iterator[httpx.Client]:
    with graph_client(server, app_token(server)) as client:
        yield client


def office_tree(root: Path) -> dict[str, bytes]:
    files = {
        "report.docx": office_file("docx", seed=1, media_bytes=200_000),
        "budget.xlsx": office_file("xlsx", seed=2, media_bytes=900_000),  # several fragments
        "deck.pptx": office_file("pptx", seed=3),
        "old.doc": compound_file(b"Word binary body " * 300, doc_summary_stream()),
        "notes.txt": b"plain text",
    }
    write_tree(root, files)
    return files


def migrate(server: EmulatorServer, src: Path, folder: str, tmp: Path, *flags: str) -> int:
    return main(
        [
            "migrate", str(src), f"{TEAM}/{folder}", "--emulator", str(server.data_dir),
            "--state", str(tmp / "state.db"), "--report", str(tmp / "reports"), "--quiet",
            "--chunk-size", "320k", *flags,
        ]
    )  # fmt: skip


def item_report(tmp: Path) -> dict[str, dict[str, str]]:
    with (tmp / "reports" / "ItemReport.csv").open(encoding="utf-8-sig", newline="") as fh:
        return {row["Item name"]: row for row in csv.DictReader(fh)}


def graph_requests(server: EmulatorServer) -> dict[str, int]:
    kinds: dict[str, int] = server.stats()["by_kind"]
    return {k: v for k, v in kinds.items() if k != "identity"}


@pytest.mark.slow
def test_office_files_are_proved_recorded_and_free_on_the_next_run(
    server: EmulatorServer, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = office_tree(src)
    server.reset_stats()
    assert migrate(server, src, "Proved", tmp_path) == 0
    kinds = graph_requests(server)
    assert kinds.get("download") == 3  # each OOXML file, once, for its proof
    # each file sent once (a hash that differs is proved, not sent again): its fragments
    fragments = sum(-(-len(data) // (320 * 1024)) for data in files.values())
    assert kinds.get("upload") == fragments, (kinds, fragments)
    rows = item_report(tmp_path)
    for name in ("report.docx", "budget.xlsx", "deck.pptx"):
        assert rows[name]["Verified by"] == "package parts", rows[name]
        assert rows[name]["Result category"] == "Migrated, SharePoint added its metadata"
    assert rows["old.doc"]["Verified by"] == "size only"
    assert rows["old.doc"]["Result category"] == "Migrated, not verified"
    assert rows["old.doc"]["Error code"] == "NOT_VERIFIED"
    assert rows["notes.txt"]["Verified by"] == "hash"
    with open_state(tmp_path / "state.db") as store:
        docx = store.item(store.jobs()[0].id, b"report.docx")
        assert docx is not None and docx.stored_hash != docx.quick_xor
        assert docx.stored_size is not None and docx.stored_size > (docx.size or 0)
    # The next run: no request for any file, nothing skipped or "newer"; --verify-target
    # compares with what the library stores, and finds nothing to send again.
    for flags in ((), ("--verify-target",)):
        server.reset_stats()
        assert migrate(server, src, "Proved", tmp_path, *flags) == 0
        kinds = graph_requests(server)
        assert "upload" not in kinds and "download" not in kinds, kinds
        assert (
            not (tmp_path / "reports" / "ItemReport.csv")
            .read_text(encoding="utf-8-sig")
            .count("Skipped")
        )


@pytest.mark.slow
def test_with_the_proof_off_a_library_s_rewrite_is_recorded_as_size_only(
    server: EmulatorServer, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    office_tree(src)
    server.reset_stats()
    assert migrate(server, src, "NoProof", tmp_path, "--no-prove-office-files") == 0
    assert "download" not in graph_requests(server)
    rows = item_report(tmp_path)
    assert rows["report.docx"]["Verified by"] == "size only"
    assert rows["report.docx"]["Error code"] == "NOT_VERIFIED"


def _tamper_downloads(part: str) -> Callable[[Engine], None]:
    """The stored package changed beyond SharePoint's metadata: `part` rewritten."""

    def hook(engine: Engine) -> None:
        drive = engine.drive
        download = drive.download

        async def tampered(item_id: str, sink: IO[bytes]) -> int:
            await download(item_id, sink)
            sink.seek(0)
            with zipfile.ZipFile(io.BytesIO(sink.read())) as zin:
                parts = {i.filename: zin.read(i) for i in zin.infolist()}
            parts[part] = parts[part].replace(b"migration", b"MIGRATION", 1)
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as zout:
                for name, data in parts.items():
                    zout.writestr(name, data)
            sink.seek(0)
            sink.truncate()
            sink.write(out.getvalue())
            return sink.tell()

        drive.download = tampered  # type: ignore[method-assign]

    return hook


def _library_engine_run(
    server: EmulatorServer, token: str, src: Path, folder: str, state: Path, **options: Any
) -> Any:
    """One round into the team library (run_engine targets a OneDrive)."""

    async def run() -> Any:
        async with GraphClient(
            token=lambda: token,
            base_url=server.info["graph_url"],
            verify=server.info["ca_file"],
            pacer=Pacer(max_concurrency=4, base_delay=0.05, max_delay=0.5),
            connect=server.info.get("connect"),
        ) as client:
            from sharelift.engine import EngineConfig
            from sharelift.source.walk import ScanOptions

            target = await resolve_target(client, parse_target(f"{TEAM}/{folder}"))
            hook = options.pop("hook", None)
            with open_state(state) as store:
                job = store.ensure_job(f"{src}|{folder}", str(src), f"{TEAM}/{folder}")
                engine = Engine(
                    drive=DriveClient(client, target.drive_id),
                    store=store,
                    job=job,
                    source=str(src),
                    target=target,
                    options=ScanOptions(),
                    config=EngineConfig(chunk_size=UNIT, workers=4, **options),
                )
                if hook is not None:
                    hook(engine)
                result = await engine.run()
                assert store.check() == []
                return result

    return asyncio.run(run())


def test_a_change_beyond_sharepoint_s_metadata_fails_the_proof(
    server: EmulatorServer, tmp_path: Path, app_token: Callable[..., str]
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"report.docx": office_file("docx", seed=9)})
    result = _library_engine_run(
        server, app_token(server), src, "Tampered", tmp_path / "s.db",
        hook=_tamper_downloads("word/document.xml"),
    )  # fmt: skip
    assert (result.failed, result.uploaded) == (1, 0)
    with open_state(tmp_path / "s.db") as store:
        item = store.item(store.jobs()[0].id, b"report.docx")
        assert item is not None and item.status == "failed"
        assert item.error_code == "HASH_MISMATCH"
        assert "word/document.xml differs" in (item.error_message or "")


def _crash_after_commit(engine: Engine) -> None:
    """The run ends at once when an Office file's commit answers (as a kill between the
    service's commit and the state's record)."""
    drive = engine.drive
    fragment, commit = drive.upload_fragment, drive.commit_upload_session

    async def upload_fragment(
        upload_url: str, data: bytes | memoryview, *, offset: int, total: int
    ) -> FragmentResult:
        result = await fragment(upload_url, data, offset=offset, total=total)
        if result.item is not None:
            raise asyncio.CancelledError
        return result

    async def commit_upload_session(upload_url: str) -> DriveItem:
        await commit(upload_url)
        raise asyncio.CancelledError

    drive.upload_fragment = upload_fragment  # type: ignore[method-assign]
    drive.commit_upload_session = commit_upload_session  # type: ignore[method-assign]


@pytest.mark.slow
def test_an_office_file_committed_before_a_crash_is_proved_and_adopted(
    server: EmulatorServer, tmp_path: Path, app_token: Callable[..., str]
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"report.docx": office_file("docx", seed=4, media_bytes=50_000)})
    token = app_token(server)
    state = tmp_path / "s.db"
    _library_engine_run(server, token, src, "Crash", state, hook=_crash_after_commit)
    server.reset_stats()
    result = _library_engine_run(server, token, src, "Crash", state)
    assert (result.adopted, result.uploaded, result.failed, result.skipped) == (1, 0, 0, 0)
    assert "upload" not in graph_requests(server)
    with open_state(state) as store:
        item = store.item(store.jobs()[0].id, b"report.docx")
        assert item is not None and (item.status, item.verified_by) == ("done", "parts")


@pytest.mark.slow
def test_refused_replacements_and_deletions_go_aside(
    server: EmulatorServer, tmp_path: Path, graph: httpx.Client
) -> None:
    """SharePoint's 404 itemNotFound on every replacement and deletion of an Office file."""
    src = tmp_path / "src"
    write_tree(
        src, {"report.docx": office_file("docx", seed=5), "deck.pptx": office_file("pptx", seed=6)}
    )
    assert migrate(server, src, "Aside", tmp_path) == 0
    server.set_faults(replace_not_found_rate=1.0)
    write_tree(src, {"report.docx": office_file("docx", seed=7)})
    (src / "deck.pptx").unlink()
    server.reset_stats()
    assert migrate(server, src, "Aside", tmp_path, "--mirror", "--overwrite") == 0
    assert server.stats()["replace_refused"] >= 2  # the replacement and the deletion
    rows = item_report(tmp_path)
    assert rows["report.docx"]["Verified by"] == "package parts"
    assert rows["deck.pptx"]["Status"] == "Deleted"
    library = next(
        d["id"] for d in server.info["drives"] if d["webUrl"] == TEAM.replace(" ", "%20")
    )
    names = [
        c["name"] for c in graph.get(f"/drives/{library}/root:/Aside:/children").json()["value"]
    ]
    assert names == ["report.docx"], names  # nothing left aside, the deleted one gone
    with open_state(tmp_path / "state.db") as store:
        assert store.moved_aside_of_job(store.jobs()[0].id) == []


def test_the_proof_s_downloads_go_through_the_proxy_without_a_token(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_cert, ca_key = make_ca(tmp_path)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server.settings.refuse_bearer_on_upload_urls = True
    src = tmp_path / "src"
    write_tree(src, {"report.docx": office_file("docx", seed=8, media_bytes=30_000)})
    with ConnectProxy(
        ca_cert=ca_cert, ca_key=ca_key, upstream=("127.0.0.1", server.port),
        upstream_ca=Path(server.info["ca_file"]),
    ) as proxy:  # fmt: skip
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        server.reset_stats()
        assert migrate(server, src, "Proxied", tmp_path, "--ca-bundle", str(ca_cert)) == 0
        assert "contoso.sharepoint.com" in proxy.hosts  # the library's upload and download URLs
    stats = server.stats()
    assert stats["by_kind"]["download"] == 1 and stats["by_kind"]["upload"] >= 1
    assert stats["bearer_on_upload_urls"] == 0 and stats["bearer_on_download_urls"] == 0
    assert item_report(tmp_path)["report.docx"]["Verified by"] == "package parts"
