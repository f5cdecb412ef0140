"""Figures and times as the dashboard words them, and text made safe to show.

`shown(text)` is applied to every free text read from the state store before it reaches a page
or a CSV file (sources, targets, messages, paths of logs): the store's reported columns hold no
secret by design, and this is the second lock on that door. It hides the query of a URL that
carries a signature or a token (an upload URL, a SAS), a password in a URL's user part (a
database URL), and anything that reads as a bearer token.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import escape

from sharelift.report.html import size_text
from sharelift.report.summary import parse_time

_SECRET_QUERY = re.compile(
    r"(?P<keep>https?://[^\s?#\"'<>]+)\?(?P<query>[^\s#\"'<>]*)", re.IGNORECASE
)
_SECRET_KEYS = re.compile(
    r"(?:^|&)(?:sig|signature|sv|se|sp|skoid|tempauth|token|access_token|code|key|password|"
    r"secret|client_secret)=",
    re.IGNORECASE,
)
_USER_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
_BEARER = re.compile(r"\b(?P<word>bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
HIDDEN = "(hidden)"


def shown(text: str) -> str:
    """`text` with secrets hidden (see the module docstring)."""

    def query(match: re.Match[str]) -> str:
        if _SECRET_KEYS.search(match["query"]):
            return f"{match['keep']}?{HIDDEN}"
        return match[0]

    text = _SECRET_QUERY.sub(query, text)
    text = _USER_PASSWORD.sub(lambda m: f"{m['scheme']}{HIDDEN}@", text)
    return _BEARER.sub(lambda m: f"{m['word']} {HIDDEN}", text)


def size(n: int) -> str:
    """Bytes for a person (`41.2 MiB`)."""
    return size_text(max(n, 0))


def rate(bytes_per_second: float) -> str:
    """`12.3 MB/s` (1 MB = 1,000,000 bytes, as the reports' charts)."""
    return f"{bytes_per_second / 1_000_000:,.2f} MB/s"


def count(n: int) -> str:
    return f"{n:,}"


def percent(value: float) -> str:
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def duration(seconds: float | None) -> str:
    """`2 h 05 min`, `4 min 10 s`, `12 s`; an em dash for None."""
    if seconds is None:
        return "—"
    total = max(round(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def when(iso: str) -> str:
    """A stored time as `2026-11-23 13:05:01` (UTC); "" stays ""."""
    if not iso:
        return ""
    return parse_time(iso).strftime("%Y-%m-%d %H:%M:%S")


def ago(iso: str, now: datetime | None = None) -> str:
    """How long before `now` a stored time was (`12 s ago`); "" for none."""
    if not iso:
        return ""
    now = now or datetime.now(UTC)
    return f"{duration((now - parse_time(iso)).total_seconds())} ago"


def state_badge(state: str) -> str:
    """A state as a coloured badge (HTML)."""
    slug = state.replace(" ", "-").replace("?", "")
    return f'<span class="state state-{slug}">{escape(state)}</span>'
