"""SharePoint's refusal to replace or delete some files it holds: 404 itemNotFound although the
item is there.

Replacing an Office file uploaded to a SharePoint library (a new upload session's bytes, or a
simple upload over it) may answer 404 `itemNotFound` (OneDrive/onedrive-api-docs#1068: the
createUploadSession succeeds, the PUT of the bytes fails), and so may deleting it; rclone's
OneDrive docs ("Replacing/deleting existing files on Sharepoint gets "item not found"") say it
"mainly affect[s] Office files (.docx, .xlsx, etc.) and web files (.html, .aspx, etc.)", not
OneDrive for Business, and suggest moving the old file aside first (`--backup-dir`): a rename
or a move is not refused. rclone/rclone#6075 met it on .html and .aspx files.

The handlers that replace or delete call `refuse_replace(faults, drive, name)` before doing
anything; with probability `faults.replace_not_found_rate` (a draw of the seeded sequence) it
raises the DriveError to answer. PATCH (rename, move) never calls it.
"""

from __future__ import annotations

from sharelift.emulator.enrichment import EXTENSIONS as OFFICE_EXTENSIONS
from sharelift.emulator.settings import Faults
from sharelift.emulator.store import Drive, DriveError

WEB_EXTENSIONS = frozenset({"aspx", "asp", "asmx", "htm", "html", "mht", "mhtml"})
"""The web files reported as refused, besides the Office files."""

REFUSED_EXTENSIONS = OFFICE_EXTENSIONS | WEB_EXTENSIONS


def refusable(drive: Drive, name: str) -> bool:
    """Whether replacing or deleting `name` in `drive` may be refused: an Office or web file in
    a site library."""
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    return drive.drive_type == "documentLibrary" and extension in REFUSED_EXTENSIONS


def refuse_replace(faults: Faults, drive: Drive, name: str) -> None:
    """Raise 404 itemNotFound with probability `faults.replace_not_found_rate` when replacing or
    deleting `name` in `drive` is refusable; else return (no draw is taken for other files)."""
    if refusable(drive, name) and faults.chance(faults.replace_not_found_rate):
        raise DriveError(404, "itemNotFound", "The resource could not be found.")
