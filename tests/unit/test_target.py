"""Parsing every TARGET form a user may paste, and what a Graph failure while resolving one
means."""

from __future__ import annotations

import httpx
import pytest

from sharelift.errors import (
    AuthError,
    OptionError,
    ShareliftError,
    TargetError,
    UnavailableError,
)
from sharelift.graph.client import GraphClient, make_ssl_context
from sharelift.graph.errors import GraphError
from sharelift.graph.pacer import Pacer
from sharelift.target import (
    onedrive_personal_path,
    parse_target,
    resolve_target,
    site_path_candidates,
    site_triple,
)


def test_onedrive_url_from_the_browser() -> None:
    t = parse_target("https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents/Sub")
    assert (t.kind, t.host, t.path) == (
        "url",
        "contoso-my.sharepoint.com",
        "/personal/megan_contoso_com/Documents/Sub",
    )


def test_sharepoint_url_is_decoded() -> None:
    t = parse_target("https://Contoso.sharepoint.com/sites/Team/Shared%20Documents/a%23b/")
    assert (t.host, t.path) == ("contoso.sharepoint.com", "/sites/Team/Shared Documents/a#b")


def test_list_view_url_takes_the_folder_from_id() -> None:
    t = parse_target(
        "https://contoso.sharepoint.com/sites/Team/Shared%20Documents/Forms/AllItems.aspx"
        "?id=%2Fsites%2FTeam%2FShared%20Documents%2FSub%2FDeep&viewid=abc"
    )
    assert t.path == "/sites/Team/Shared Documents/Sub/Deep"


def test_list_view_url_without_id_is_the_library_root() -> None:
    t = parse_target(
        "https://contoso.sharepoint.com/sites/Team/Shared%20Documents/Forms/AllItems.aspx"
    )
    assert t.path == "/sites/Team/Shared Documents"


def test_sharing_link_form() -> None:
    t = parse_target(
        "https://contoso.sharepoint.com/:f:/r/sites/Team/Shared%20Documents/Sub?csf=1&web=1"
    )
    assert t.path == "/sites/Team/Shared Documents/Sub"


def test_onedrive_upn_form() -> None:
    t = parse_target("onedrive:Megan@Contoso.com/Projects/2026")
    assert (t.kind, t.upn, t.folder) == ("onedrive", "megan@contoso.com", "Projects/2026")
    assert parse_target("onedrive:megan@contoso.com").folder == ""


def test_drive_id_forms() -> None:
    assert parse_target("drive:b!abc-DEF_1/x/y").drive_id == "b!abc-DEF_1"
    t = parse_target("b!abc/x")
    assert (t.kind, t.drive_id, t.folder) == ("drive", "b!abc", "x")


def test_spmt_triple() -> None:
    t = site_triple("https://contoso.sharepoint.com/sites/Team/", "Documents", "a\\b/")
    assert (t.kind, t.host, t.site_path, t.library, t.folder) == (
        "site",
        "contoso.sharepoint.com",
        "/sites/Team",
        "Documents",
        "a/b",
    )
    assert site_triple("https://contoso.sharepoint.com", "Documents").site_path == ""


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("", "empty"),
        ("ftp://x/y", "not a target"),
        ("http://contoso.sharepoint.com/sites/x", "https"),
        ("onedrive:megan/Sub", "not a UPN"),
        ("drive:", "DRIVE-ID"),
        ("onedrive:megan@contoso.com/../etc", "'..'"),
        ("https://contoso.sharepoint.com/sites/Team/SitePages/Home.aspx", "id="),
        ("/home/megan", "not a target"),
    ],
)
def test_bad_targets_say_what_is_expected(bad: str, needle: str) -> None:
    """A malformed TARGET is a usage error (exit 2) naming the option, before any sign-in."""
    with pytest.raises(OptionError, match=needle) as caught:
        parse_target(bad)
    assert caught.value.option == "target" and caught.value.exit_code == 2


def test_triple_needs_a_site_and_a_library() -> None:
    with pytest.raises(OptionError, match="expected https://HOST/sites/NAME") as site:
        site_triple("contoso", "Documents")
    assert site.value.option == "site"
    with pytest.raises(OptionError, match="name the document library") as library:
        site_triple("https://contoso.sharepoint.com/sites/T", " ")
    assert library.value.option == "library"


def test_site_candidates_cover_subsites() -> None:
    assert site_path_candidates("/sites/Team/Sub/Shared Documents/x") == [
        "/sites/Team",
        "/sites/Team/Sub",
        "/sites/Team/Sub/Shared Documents",
    ]
    assert site_path_candidates("/Shared Documents/x") == ["", "/Shared Documents"]


def test_onedrive_personal_path() -> None:
    assert onedrive_personal_path("Megan.Bowen@contoso.com") == "/personal/megan_bowen_contoso_com"


# --- what a Graph failure during resolution means -------------------------------------------


class _Clock:
    """The pacer's clock and sleep: sleeping moves time on at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _error(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": "no"}}, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "expected", "exit_code"),
    [
        (_error(401, "InvalidAuthenticationToken"), AuthError, 3),
        (_error(403, "accessDenied"), AuthError, 3),
        (_error(429, "TooManyRequests", **{"Retry-After": "1"}), UnavailableError, 75),
        (_error(503, "serviceNotAvailable"), UnavailableError, 75),
        (_error(500, "generalException"), UnavailableError, 75),
        (httpx.ConnectError("connection refused"), UnavailableError, 75),
        (_error(400, "invalidRequest"), TargetError, 4),
    ],
)
async def test_resolution_failures_keep_their_meaning_and_cause(
    answer: httpx.Response | Exception, expected: type[ShareliftError], exit_code: int
) -> None:
    """401/403 are sign-in problems (exit 3), throttling and lost connections are for later
    (exit 75), not "could not be resolved" (exit 4); the Graph error is the cause."""

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = _Clock()
    async with GraphClient(
        token=lambda: "token",
        base_url="https://graph.example.test/v1.0",
        pacer=Pacer(clock=clock.monotonic, sleep=clock.sleep, random=lambda: 0.5),
        transport=httpx.MockTransport(handler),
        max_attempts=3,
        verify=make_ssl_context(),
    ) as client:
        with pytest.raises(expected) as caught:
            await resolve_target(client, parse_target("drive:b!abc/Folder"))
    assert type(caught.value) is expected
    assert caught.value.exit_code == exit_code
    assert isinstance(caught.value.__cause__, GraphError)
    assert "drive:b!abc/Folder" in str(caught.value)
