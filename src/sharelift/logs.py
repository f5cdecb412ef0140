"""The run log: `--log-file FILE` and `-v` / `-vv`, with every secret scrubbed.

sharelift's modules log through loggers named `sharelift.*`:

    INFO     what started (a job, its round, its options), the round's summary and where its
             reports are, each throttling wait, each retry
    WARNING  each item that failed, with its code and reason; a round that did not complete
    DEBUG    (-vv) each item settled, each Graph request (its URL without the query string)

`log_to(file, verbosity)` sends them to a file (created private, 0600, appended to) or, with no
file, to stderr; only `sharelift.*` loggers are taken, never a library's (httpx logs whole
URLs, hpack header values), and every line passes `scrub` first. The reports' Log Path column
names the file (`current_file()`). A library caller who attaches no handler sees nothing:
the `sharelift` logger has a NullHandler (`sharelift/__init__.py`).

Scrubbed (invariant 6, DESIGN.md): the secrets registered with `add_secret` (the client secret,
certificate password and access token the command was given), anything that looks like a
bearer token or a JWT, the query string of every URL (an upload URL's `tempauth`, a SAS
signature) and `key=value` pairs whose key names a secret.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = "sharelift"
_secrets: set[str] = set()
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+")
_URL_QUERY = re.compile(r"(\bhttps?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")
_SECRET_PAIR = re.compile(
    r"(?i)\b(client_secret|password|secret|access_token|refresh_token|id_token|token|"
    r"tempauth|sig|code|assertion|client_assertion)=[^\s&\"'<>]+"
)
MIN_SECRET = 6
"""Shorter values are not registered: scrubbing them would blank ordinary words."""


def add_secret(value: str | None) -> None:
    """Never write `value` to the log (a secret the command was given or read)."""
    if value and len(value) >= MIN_SECRET:
        _secrets.add(value)


def scrub(text: str) -> str:
    """`text` without the secrets it may hold (see the module docstring)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    text = _URL_QUERY.sub(r"\1?…", text)
    text = _BEARER.sub(r"\1 <token>", text)
    text = _JWT.sub("<token>", text)
    return _SECRET_PAIR.sub(r"\1=<secret>", text)


class _Formatter(logging.Formatter):
    """`2026-11-23 13:05:01 UTC WARNING sharelift.engine: ...`, scrubbed, tracebacks too."""

    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__("%(asctime)s UTC %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def _private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)


def level_for(verbosity: int, to_file: bool) -> int | None:
    """The level a run logs at: none without `-v` unless a file was asked for (INFO there),
    INFO with `-v`, DEBUG with `-vv`."""
    if verbosity >= 2:
        return logging.DEBUG
    if verbosity == 1 or to_file:
        return logging.INFO
    return None


@contextmanager
def log_to(file: str | os.PathLike[str] | None, verbosity: int = 0) -> Iterator[Path | None]:
    """Log `sharelift.*` to `file` (or to stderr when None) at the level `level_for` gives,
    for the duration of the block; yields the file's absolute path (None for stderr or no log).
    Raises OSError when the file cannot be opened."""
    level = level_for(verbosity, file is not None)
    if level is None:
        yield None
        return
    handler: logging.Handler
    path = Path(file).resolve() if file is not None else None
    if path is not None:
        _private(path)
        handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logger = logging.getLogger(ROOT)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


def current_file() -> str:
    """The file the run logs to ("" for none): what the reports' Log Path column shows."""
    for handler in logging.getLogger(ROOT).handlers:
        if isinstance(handler, logging.FileHandler):
            return str(handler.baseFilename)
    return ""
