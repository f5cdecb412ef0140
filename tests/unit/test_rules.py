"""OneDrive / SharePoint naming rules and the rename policy: one test per rule, then properties."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharelift.errors import UsageError
from sharelift.source.rules import (
    MAX_FILE_SIZE,
    Code,
    RenameMode,
    RenamePolicy,
    Severity,
    Status,
    TargetPrefix,
    collision_key,
    decide_siblings,
    fix_name,
    name_findings,
)

UNDERSCORE = RenamePolicy()
FULLWIDTH = RenamePolicy(RenameMode.FULLWIDTH)
DASH = RenamePolicy.parse("-")
OFF = RenamePolicy.parse("off")


@dataclass(frozen=True)
class Child:
    name: str
    is_dir: bool = False
    size: int = 0


def codes(name: str, *, is_dir: bool = False, root: bool = False) -> set[Code]:
    return {f.code for f in name_findings(name, is_dir=is_dir, at_library_root=root)}


def decide(
    *names: str, policy: RenamePolicy = UNDERSCORE, **kw: int | bool
) -> dict[str, str | None]:
    decisions = decide_siblings([Child(n) for n in names], policy, **kw)  # type: ignore[arg-type]
    return {d.source: d.target for d in decisions}


# --- one rule at a time -----------------------------------------------------------------------


@pytest.mark.parametrize("char", list('"*:<>?/\\|'))
def test_invalid_characters(char: str) -> None:
    name = f"a{char}b.txt"
    assert codes(name) == {Code.INVALID_CHARACTER}
    assert fix_name(name, UNDERSCORE, is_dir=False, at_library_root=False) == "a_b.txt"
    assert fix_name(name, DASH, is_dir=False, at_library_root=False) == "a-b.txt"
    fixed = fix_name(name, FULLWIDTH, is_dir=False, at_library_root=False)
    assert fixed == f"a{chr(ord(char) + 0xFEE0)}b.txt"
    assert not codes(fixed)


def test_allowed_characters_pass() -> None:
    for name in ("#report%.txt", "a&b", "{x}", "semi;colon", "~tilde", "été", "日本語.docx", "🙂"):
        assert not codes(name), name


@pytest.mark.parametrize("name", [" lead", "trail ", "  both  ", " "])
def test_leading_and_trailing_spaces(name: str) -> None:
    assert codes(name) == {Code.LEADING_TRAILING_SPACE}
    for policy in (UNDERSCORE, DASH, FULLWIDTH):
        fixed = fix_name(name, policy, is_dir=False, at_library_root=False)
        assert fixed == (name.strip() or ("␠" if policy is FULLWIDTH else policy.char))
        assert not codes(fixed)


@pytest.mark.parametrize(
    ("name", "fixed"),
    [
        ("budget*.xlsx ", "budget_.xlsx"),
        (" budget.xlsx", "budget.xlsx"),
        ("  notes?.txt  ", "notes_.txt"),
        (" CON ", "CON_"),  # the spaces go first; what is left is still checked
        (" ~$lock.docx", "_$lock.docx"),
    ],
)
def test_a_rename_never_changes_the_extension(name: str, fixed: str) -> None:
    """Edge spaces are removed, as Windows and OneDrive save such names, not replaced."""
    assert fix_name(name, UNDERSCORE, is_dir=False, at_library_root=False) == fixed
    if "." in fixed:
        wide = fix_name(name, FULLWIDTH, is_dir=False, at_library_root=False)
        assert wide.rpartition(".")[2] == fixed.rpartition(".")[2]


def test_inner_spaces_are_fine() -> None:
    assert not codes("a b c.txt")


@pytest.mark.parametrize(
    "name",
    [".lock", "CON", "con", "PRN", "AUX", "NUL", "COM0", "com9", "LPT0", "LPT9", "desktop.ini",
     "Desktop.INI"],
)  # fmt: skip
def test_blocked_names(name: str) -> None:
    assert codes(name) == {Code.BLOCKED_NAME}
    fixed = fix_name(name, UNDERSCORE, is_dir=False, at_library_root=False)
    assert fixed == name + "_"
    assert not codes(fixed)


def test_blocked_names_match_the_whole_name_only() -> None:
    for name in ("CON.txt", "console", "COM10", "LPT", "my.lock", "desktop.ini.bak"):
        assert Code.BLOCKED_NAME not in codes(name), name


@pytest.mark.parametrize("name", ["_vti_", "a_vti_b", "x_VTI_.txt", "_vti__vti_"])
def test_vti_anywhere(name: str) -> None:
    assert Code.VTI_IN_NAME in codes(name)
    for policy in (UNDERSCORE, DASH, FULLWIDTH):
        fixed = fix_name(name, policy, is_dir=False, at_library_root=False)
        assert not codes(fixed), (policy, fixed)


def test_tilde_dollar_prefix() -> None:
    assert codes("~$budget.xlsx") == {Code.TILDE_DOLLAR_PREFIX}
    assert fix_name("~$budget.xlsx", UNDERSCORE, is_dir=False, at_library_root=False) == (
        "_$budget.xlsx"
    )
    assert not codes("a~$b")
    assert not codes("~budget")


def test_forms_only_as_a_folder_at_the_library_root() -> None:
    assert codes("forms", is_dir=True, root=True) == {Code.FORMS_AT_LIBRARY_ROOT}
    assert codes("Forms", is_dir=True, root=True) == {Code.FORMS_AT_LIBRARY_ROOT}
    assert not codes("forms", is_dir=True, root=False)
    assert not codes("forms", is_dir=False, root=True)
    assert not codes("forms_", is_dir=True, root=True)
    assert fix_name("forms", UNDERSCORE, is_dir=True, at_library_root=True) == "forms_"


def test_segment_over_255_is_blocked() -> None:
    assert not codes("a" * 255)
    found = name_findings("a" * 256, is_dir=False, at_library_root=False)
    assert [(f.code, f.severity) for f in found] == [(Code.NAME_TOO_LONG, Severity.BLOCKED)]
    [decision] = decide_siblings([Child("a" * 256)], UNDERSCORE)
    assert decision.status is Status.BLOCKED and decision.target is None


def test_control_characters() -> None:
    for name in ("a\x01b", "tab\there", "new\nline", "del\x7f", "c1\x85"):
        assert codes(name) == {Code.CONTROL_CHARACTER}, repr(name)
        assert not codes(fix_name(name, UNDERSCORE, is_dir=False, at_library_root=False))
    assert fix_name("a\x01b", FULLWIDTH, is_dir=False, at_library_root=False) == "a\u2401b"


def test_bytes_that_are_not_utf8() -> None:
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")  # Latin-1 name on a UTF-8 system
    assert codes(name) == {Code.INVALID_UTF8}
    assert fix_name(name, UNDERSCORE, is_dir=False, at_library_root=False) == "caf_.txt"
    assert fix_name(name, FULLWIDTH, is_dir=False, at_library_root=False) == "caf\ufffd.txt"


def test_file_over_250_gb_is_blocked() -> None:
    ok, big = decide_siblings(
        [Child("ok.bin", size=MAX_FILE_SIZE), Child("big.bin", size=MAX_FILE_SIZE + 1)],
        UNDERSCORE,
    )
    assert ok.status is Status.MIGRATE
    assert big.status is Status.BLOCKED
    assert [f.code for f in big.findings] == [Code.FILE_TOO_LARGE]
    # A folder's size does not count.
    [folder] = decide_siblings([Child("d", is_dir=True, size=MAX_FILE_SIZE * 2)], UNDERSCORE)
    assert folder.status is Status.MIGRATE


def test_path_length_counts_prefix_and_renamed_name() -> None:
    # parent path 390 characters: "/" + 9 characters = 400 passes, 10 does not.
    fits, over = decide_siblings(
        [Child("a" * 9), Child("b" * 10)], UNDERSCORE, parent_path_length=390
    )
    assert fits.status is Status.MIGRATE and fits.path_length == 400
    assert over.status is Status.BLOCKED and over.path_length == 401
    assert [f.code for f in over.findings] == [Code.PATH_TOO_LONG]
    # The renamed name is what counts: "a:b" -> "a_b" (same length), collision suffix adds 4.
    d = decide_siblings([Child("x_y"), Child("x:y")], UNDERSCORE, parent_path_length=393)
    assert d[0].status is Status.MIGRATE
    assert d[1].target is None and d[1].status is Status.BLOCKED  # 393 + len("/x_y (1)") = 401


def test_case_collision_gets_a_suffix_and_keeps_the_extension() -> None:
    result = decide("Report.docx", "report.docx", "REPORT.DOCX")
    assert result == {
        "REPORT.DOCX": "REPORT.DOCX",
        "Report.docx": "Report (1).docx",
        "report.docx": "report (2).docx",
    }


def test_unicode_normalisation_collision() -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    assert collision_key(nfc) == collision_key(nfd)
    d = decide_siblings([Child(nfc), Child(nfd)], UNDERSCORE)
    codes_found = {f.code for x in d for f in x.findings}
    assert codes_found == {Code.UNICODE_COLLISION}
    assert {x.target for x in d} == {nfd, nfc + " (1)"} or {x.target for x in d} == {
        nfc,
        nfd + " (1)",
    }


def test_unchanged_names_win_over_renamed_ones() -> None:
    assert decide("a?b", "a_b") == {"a_b": "a_b", "a?b": "a_b (1)"}
    d = decide_siblings([Child("a?b"), Child("a_b")], UNDERSCORE)
    assert {f.code for f in d[0].findings} == {Code.INVALID_CHARACTER, Code.RENAME_COLLISION}


def test_suffix_skips_names_already_taken() -> None:
    assert decide("A", "a", "a (1)") == {"A": "A", "a (1)": "a (1)", "a": "a (2)"}


def test_rename_off_skips_and_reports() -> None:
    d = decide_siblings([Child("a:b"), Child("A"), Child("a"), Child("fine")], OFF)
    by = {x.source: x for x in d}
    assert by["a:b"].status is Status.SKIPPED and by["a:b"].target is None
    assert by["a:b"].findings[0].severity is Severity.SKIPPED
    assert by["A"].status is Status.MIGRATE
    assert by["a"].status is Status.SKIPPED
    assert by["a"].findings[0].code is Code.CASE_COLLISION
    assert by["fine"].status is Status.MIGRATE


def test_blocked_items_do_not_take_names() -> None:
    huge = Child("data.bin", size=MAX_FILE_SIZE + 1)
    d = decide_siblings([huge, Child("DATA.bin")], UNDERSCORE)
    assert d[1].target == "DATA.bin" and d[1].status is Status.MIGRATE


def test_decisions_do_not_depend_on_input_order() -> None:
    names = ["b", "B", "a:b", "a_b", "x", "é", "e\u0301"]
    one = decide(*names)
    two = decide(*reversed(names))
    assert one == two


# --- policy parsing and the target prefix ---------------------------------------------------


def test_policy_parsing() -> None:
    assert RenamePolicy.parse("underscore") == RenamePolicy()
    assert RenamePolicy.parse("_") == RenamePolicy()
    assert RenamePolicy.parse("FULLWIDTH").mode is RenameMode.FULLWIDTH
    assert RenamePolicy.parse("off").enabled is False
    assert RenamePolicy.parse("-") == RenamePolicy(RenameMode.CHAR, "-")
    assert str(RenamePolicy.parse("-")) == "-"
    for bad in ("", "ab", "*", "/", " ", ".", "~", "\x01"):
        with pytest.raises(UsageError, match="--rename"):
            RenamePolicy.parse(bad)


SP = "https://contoso.sharepoint.com"
TEAM = "/sites/Team/Shared Documents"


@pytest.mark.parametrize(
    ("target", "path", "root"),
    [
        (f"{SP}/sites/Team/Shared%20Documents", TEAM, True),
        (f"{SP}/sites/Team/Shared Documents/Sub/Deeper", f"{TEAM}/Sub/Deeper", False),
        (f"{SP}/sites/Team/Shared%20Documents/Forms/AllItems.aspx", TEAM, True),
        (f"{SP}/Shared%20Documents", "/Shared Documents", True),
        (
            "https://contoso-my.sharepoint.com/personal/ann_contoso_com/Documents/x",
            "/personal/ann_contoso_com/Documents/x",
            False,
        ),
        ("onedrive:Ann.Lee@contoso.com", "/personal/ann_lee_contoso_com/Documents", True),
        (
            "onedrive:ann@contoso.com/Dept/2024/",
            "/personal/ann_contoso_com/Documents/Dept/2024",
            False,
        ),
        ("/teams/Eng/Docs", "/teams/Eng/Docs", True),
    ],
)
def test_target_prefix(target: str, path: str, root: bool) -> None:
    prefix = TargetPrefix.parse(target)
    assert prefix.path == path
    assert prefix.at_library_root is root


@pytest.mark.parametrize(
    "bad", ["contoso", "https://contoso.sharepoint.com/", "https://x/sites/Team", "onedrive:ann"]
)
def test_target_prefix_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="TARGET"):
        TargetPrefix.parse(bad)


# --- properties of the rename policy ----------------------------------------------------------

_awkward = st.sampled_from(
    [*'"*:<>?/\\| ._~$', "_vti_", "CON", "forms", ".lock", "\x00", "\x1f", "\x7f", "\udcff",
                               "e\u0301", "\u00e9", "A", "a", "Z", "z", "日"]
)  # fmt: skip
names = st.lists(_awkward, min_size=1, max_size=8).map("".join)
policies = st.sampled_from([UNDERSCORE, FULLWIDTH, DASH, RenamePolicy.parse("x")])


@settings(max_examples=300, deadline=None)
@given(name=names, policy=policies, is_dir=st.booleans(), root=st.booleans())
def test_fixed_names_pass_and_fixing_is_idempotent(
    name: str, policy: RenamePolicy, is_dir: bool, root: bool
) -> None:
    fixed = fix_name(name, policy, is_dir=is_dir, at_library_root=root)
    assert not name_findings(fixed, is_dir=is_dir, at_library_root=root)
    assert fix_name(fixed, policy, is_dir=is_dir, at_library_root=root) == fixed
    if not name_findings(name, is_dir=is_dir, at_library_root=root):
        assert fixed == name


@settings(max_examples=200, deadline=None)
@given(
    siblings=st.lists(st.tuples(names, st.booleans()), max_size=12, unique_by=lambda t: t[0]),
    policy=policies,
    root=st.booleans(),
)
def test_folder_decisions_are_valid_distinct_and_idempotent(
    siblings: list[tuple[str, bool]], policy: RenamePolicy, root: bool
) -> None:
    children = [Child(n, d) for n, d in siblings]
    decisions = decide_siblings(children, policy, at_library_root=root)
    targets = [(d.target, c.is_dir) for d, c in zip(decisions, children, strict=True) if d.target]
    # Every target passes the rules...
    for target, is_dir in targets:
        assert not name_findings(target, is_dir=is_dir, at_library_root=root)
    # ...no two collide once case and normalisation are ignored...
    keys = [collision_key(t) for t, _ in targets]
    assert len(keys) == len(set(keys))
    # ...and deciding the output again changes nothing.
    again = decide_siblings([Child(t, d) for t, d in targets], policy, at_library_root=root)
    assert [d.target for d in again] == [t for t, _ in targets]
    assert all(d.status is Status.MIGRATE for d in again)


@settings(max_examples=100, deadline=None)
@given(siblings=st.lists(names, max_size=10, unique=True))
def test_rename_off_never_renames(siblings: list[str]) -> None:
    for child, decision in zip(
        siblings, decide_siblings([Child(n) for n in siblings], OFF), strict=True
    ):
        assert decision.target in (None, child)
        assert decision.status in (Status.MIGRATE, Status.SKIPPED, Status.BLOCKED)


def test_a_onedrive_target_counts_as_its_url_does() -> None:
    """`onedrive:UPN/Folder` and the OneDrive folder's URL give the same 400-character count."""
    url = "https://contoso-my.sharepoint.com/personal/ann_contoso_com/Documents/Dept"
    assert TargetPrefix.parse("onedrive:ann@contoso.com/Dept") == TargetPrefix.parse(url)
