"""Upload URLs are credentials: whatever their shape (the emulator's, like SharePoint's, carries
its credential in a `tempauth` query, and a session `guid` beside it), none appears in an error
message, the state store's error text, a report or a log line, however uploads fail."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from migrate_helpers import UNIT, run_engine, write_tree

from sharelift.emulator.server import EmulatorServer
from sharelift.engine import Engine
from sharelift.graph.uploads import FragmentResult
from sharelift.report import write_round_reports
from sharelift.state import open_state


def _watch_upload_urls(server: EmulatorServer, urls: set[str]) -> Callable[[Engine], None]:
    """Note every upload URL used; faults start with the first fragment (the target and its
    folders resolved and made without them)."""

    def hook(engine: Engine) -> None:
        drive = engine.drive
        fragment, status = drive.upload_fragment, drive.upload_session_status

        async def upload_fragment(
            upload_url: str, data: bytes | memoryview, *, offset: int, total: int
        ) -> FragmentResult:
            if not urls:
                server.set_faults(error_rate=0.4, drop_rate=0.2)
            urls.add(upload_url)
            return await fragment(upload_url, data, offset=offset, total=total)

        async def upload_session_status(upload_url: str) -> object:
            urls.add(upload_url)
            return await status(upload_url)

        drive.upload_fragment = upload_fragment  # type: ignore[method-assign]
        drive.upload_session_status = upload_session_status  # type: ignore[method-assign, assignment]

    return hook


@pytest.mark.slow
def test_no_upload_url_in_errors_state_reports_or_logs(
    emulator_factory: Callable[..., EmulatorServer],
    app_token: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = emulator_factory()
    rng = random.Random(11)
    files = {f"f{i:02}.bin": rng.randbytes(rng.randint(1, 3 * UNIT)) for i in range(10)}
    src = tmp_path / "src"
    write_tree(src, files)
    urls: set[str] = set()
    state = tmp_path / "s.db"
    caplog.set_level(logging.DEBUG, logger="sharelift")
    hook = _watch_upload_urls(server, urls)
    options: dict[str, object] = {"chunk_size": UNIT, "client_attempts": 2, "check": False}
    result = asyncio.run(
        run_engine(server, app_token(server), src, "Secret", state, hook=hook, **options)
    )
    server.reset_faults()
    assert result.failed > 0 and urls  # uploads failed, and there were upload URLs to leak
    secrets = set()
    for url in urls:
        parts = urlsplit(url)
        secrets |= {url, parts.query} - {""}
        # the credential and the session: long query values (a drive or item id in the path is
        # no secret: Graph's own URLs name them)
        secrets |= {v for _, v in parse_qsl(parts.query) if len(v) >= 16}
    with open_state(state) as store:
        job = store.jobs()[0]
        messages = [i.error_message or "" for i in store.items(job.id)]
        rnd = store.rounds(job.id)[-1]
        reports, _ = write_round_reports(store, job, rnd, tmp_path / "reports")
    texts = {"state error text": "\n".join(messages), "log": caplog.text}
    for path in sorted(reports.folder.iterdir()):
        texts[path.name] = path.read_text(encoding="utf-8-sig")
    assert any("HTTP" in m or "Error" in m for m in messages), messages  # failures were described
    for where, text in texts.items():
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, (where, leaked[:3])
