"""Parsing every TARGET form a user may paste."""

from __future__ import annotations

import pytest

from sharelift.errors import TargetError
from sharelift.target import (
    onedrive_personal_path,
    parse_target,
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
    with pytest.raises(TargetError, match=needle):
        parse_target(bad)


def test_triple_needs_a_site_and_a_library() -> None:
    with pytest.raises(TargetError, match="--site"):
        site_triple("contoso", "Documents")
    with pytest.raises(TargetError, match="--library"):
        site_triple("https://contoso.sharepoint.com/sites/T", " ")


def test_site_candidates_cover_subsites() -> None:
    assert site_path_candidates("/sites/Team/Sub/Shared Documents/x") == [
        "/sites/Team",
        "/sites/Team/Sub",
        "/sites/Team/Sub/Shared Documents",
    ]
    assert site_path_candidates("/Shared Documents/x") == ["", "/Shared Documents"]


def test_onedrive_personal_path() -> None:
    assert onedrive_personal_path("Megan.Bowen@contoso.com") == "/personal/megan_bowen_contoso_com"
