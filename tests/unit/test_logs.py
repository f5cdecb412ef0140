"""The run log: levels, a private file, sharelift's loggers only, every secret scrubbed."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from sharelift import logs

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZWdhbiJ9.c2lnbmF0dXJlLXZhbHVl"


def test_scrub_removes_every_kind_of_secret() -> None:
    logs.add_secret("s3cr3t-value-1234")
    logs.add_secret("abc")  # too short to scrub without blanking words
    text = logs.scrub(
        f"secret s3cr3t-value-1234, Authorization: Bearer {JWT}, token {JWT}, "
        "PUT https://contoso-my.sharepoint.com/_api/v2.0/uploadSession?guid=1&tempauth=xyz ok, "
        "https://acct.blob.core.windows.net/c/b?sv=2024&sig=abcdef, client_secret=hunter2&x, "
        "a cabbage"
    )
    for leak in ("s3cr3t-value-1234", JWT, "tempauth=xyz", "sig=abcdef", "hunter2", "eyJ"):
        assert leak not in text
    assert "https://contoso-my.sharepoint.com/_api/v2.0/uploadSession?…" in text
    assert "a cabbage" in text  # "abc" was not registered


def test_levels() -> None:
    assert logs.level_for(0, to_file=False) is None
    assert logs.level_for(0, to_file=True) == logging.INFO
    assert logs.level_for(1, to_file=False) == logging.INFO
    assert logs.level_for(2, to_file=True) == logging.DEBUG


def test_a_log_file_is_private_takes_sharelift_only_and_is_named(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    assert logs.current_file() == ""
    with logs.log_to(path, verbosity=1) as opened:
        assert opened == path.resolve()
        assert logs.current_file() == str(path.resolve())
        logging.getLogger("sharelift.engine").info("round started with Bearer %s", JWT)
        logging.getLogger("sharelift.engine").debug("a detail only -vv shows")
        logging.getLogger("httpx").warning("HTTP Request: PUT https://x/?tempauth=leak")
    assert logs.current_file() == ""
    text = path.read_text(encoding="utf-8")
    assert "INFO sharelift.engine: round started with Bearer <token>" in text
    assert "detail" not in text and "httpx" not in text and "leak" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
