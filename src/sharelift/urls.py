"""Service URLs that may carry a password: a database (`postgresql://user:secret@host/db`) or a
broker (`redis://:secret@host:6379/0`), shown without it (DESIGN.md invariant 6).

Every message, log line, status page and `config show` that names such a URL shows
`hide_password(url)`; the URL itself goes only to the library that connects.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
_SECRET_QUERY = frozenset({"password", "passwd", "pass", "sslpassword"})


def is_url(text: str) -> bool:
    """True for `scheme://...` (a service), False for a file path."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.replace("+", "").isalpha()


def hide_password(url: str) -> str:
    """`url` with the password of its user part and any password in its query replaced by
    `***`; anything that is not a URL comes back as it is."""
    if not is_url(url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{url.partition('://')[0]}://{HIDDEN}"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':' + HIDDEN if colon else ''}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY for k, _ in pairs):
            query = urlencode(
                [(k, HIDDEN if k.lower() in _SECRET_QUERY else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
