"""What SharePoint does to Office files committed to a site's document library.

SharePoint (not OneDrive for Business) changes Office documents when they are committed to a
library, so the stored bytes, size and quickXorHash differ from what was sent
(OneDrive/onedrive-api-docs#935, rclone/rclone#2599 and #2753, abraunegg/onedrive#2492 and
#2654; rclone's OneDrive docs: "Sharepoint (not OneDrive or OneDrive for Business) silently
modifies uploaded files, mainly Office files"). It is the document parser demoting the
library's content type and columns into the file ("Document Property Promotion and Demotion").

    ooxml    the Office Open XML types (docx, xlsx, pptx and their macro and template kinds)
    legacy   the binary compound-file types (doc, xls, ppt and theirs)

`commit_hook(store, settings)` is the store commit hook that applies them: only in drives of
type documentLibrary, only while `settings.office_enrichment` is on (read at each commit, so it
can be switched at runtime), chosen by the file name's extension as SharePoint chooses its
parser. A file its parser cannot read is stored as sent.
"""

from __future__ import annotations

import uuid

from sharelift.emulator.enrichment import legacy, ooxml
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import CommitHook, Content, Drive, Store, list_id_of

EXTENSIONS = ooxml.EXTENSIONS | legacy.EXTENSIONS
"""Every extension whose files a library rewrites."""


def enriched_kind(drive: Drive, name: str) -> str | None:
    """ "ooxml" or "legacy" when committing `name` to `drive` rewrites it, else None."""
    if drive.drive_type != "documentLibrary":
        return None
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension in ooxml.EXTENSIONS:
        return "ooxml"
    if extension in legacy.EXTENSIONS:
        return "legacy"
    return None


def content_type_id(drive: Drive) -> str:
    """The id of a library's own Document content type: `0x0101` (Document), `00`, and 32 hex
    digits of the library (SharePoint's list-scoped copy of a site content type)."""
    list_id = list_id_of(drive.id) or str(uuid.uuid5(uuid.NAMESPACE_URL, drive.id))
    return "0x010100" + list_id.replace("-", "").upper()


def commit_hook(store: Store, settings: EmulatorSettings) -> CommitHook:
    """The hook that rewrites Office files committed to site libraries (see the module doc)."""

    def enrich(drive: Drive, name: str, content: Content) -> Content:
        kind = enriched_kind(drive, name) if settings.office_enrichment else None
        if kind is None:
            return content
        target = store.files.staging_path()
        try:
            if kind == "ooxml":
                ooxml.rewrite_package(
                    content.path, target, ooxml.LibraryContext(content_type_id(drive))
                )
            else:
                legacy.rewrite_compound_file(content.path, target, content_type_id(drive))
        except (ooxml.NotAPackage, legacy.NotACompoundFile):
            return content  # SharePoint stores what its parser cannot read as it came
        return store.files.adopt(target)

    return enrich
