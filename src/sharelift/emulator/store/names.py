"""Names and paths as SharePoint accepts them, and the names conflictBehavior=rename tries.

"Restrictions and limitations in OneDrive and SharePoint" (support article
64883a5d-228e-48f5-b3d2-eb39e07630fa). The messages are the ones Graph returns for each case.
"""

from __future__ import annotations

import mimetypes
import re

from sharelift.emulator.store.errors import DriveError

_INVALID_CHARS = re.compile(r'["*:<>?/\\|\x00-\x1f]')
_RESERVED = {
    ".lock",
    "con",
    "prn",
    "aux",
    "nul",
    "desktop.ini",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}
MAX_SEGMENT = 255
MAX_PATH = 400


def check_name(name: str, *, is_folder: bool, at_root: bool) -> None:
    """Raise DriveError(400, invalidRequest) for a name SharePoint refuses."""
    if not name or name in {".", ".."}:
        raise DriveError(400, "invalidRequest", "The provided name cannot be empty.")
    if _INVALID_CHARS.search(name):
        raise DriveError(
            400, "invalidRequest", "The provided name cannot contain any illegal characters."
        )
    if name != name.strip(" "):
        raise DriveError(
            400, "invalidRequest", "The provided name cannot contain leading, or trailing, spaces."
        )
    lower = name.lower()
    # The article lists exact names only: "CON" is refused, "con.txt" is not.
    if lower in _RESERVED:
        raise DriveError(400, "invalidRequest", "The provided name is a reserved name.")
    if "_vti_" in lower or name.startswith("~$"):
        raise DriveError(400, "invalidRequest", "The provided name is not allowed.")
    if is_folder and at_root and lower == "forms":
        # microsoft-graph-docs-contrib#8779: "Name is reserved for list forms folder."
        raise DriveError(400, "invalidRequest", "Name is reserved for list forms folder.")
    if name.endswith("."):
        # skilion/onedrive#420: "Path (/x.) contains invalid trailing character."
        raise DriveError(
            400, "invalidRequest", f"Path (/{name}) contains invalid trailing character."
        )
    if len(name) > MAX_SEGMENT:
        raise DriveError(400, "invalidRequest", "The provided name is too long.")


def check_path_length(parent_path: str, name: str) -> None:
    """Raise DriveError(400) when `parent_path/name` is longer than SharePoint allows."""
    if len(parent_path) + 1 + len(name) > MAX_PATH:
        raise DriveError(
            400,
            "invalidRequest",
            "The URL path for all files and folders must be 400 characters or less.",
        )


def split_path(path: str) -> list[str]:
    """`/a/b/` -> ["a", "b"]; empty segments are dropped as Graph does."""
    return [p for p in path.split("/") if p]


def conflict_candidate(name: str, is_folder: bool, n: int) -> str:
    """The n-th name tried by conflictBehavior=rename: `a.txt` -> `a 1.txt`, folder `a` -> `a 1`."""
    if not is_folder:
        stem, dot, ext = name.rpartition(".")
        if dot and stem:
            return f"{stem} {n}.{ext}"
    return f"{name} {n}"


def mime_for(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def personal_path(upn: str) -> str:
    """`megan@contoso.com` -> `/personal/megan_contoso_com`."""
    return "/personal/" + re.sub(r"[.@]", "_", upn.lower())
