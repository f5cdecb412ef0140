"""The XML files of a Migration API package, written from the files it carries.

A package is the content package (one encrypted blob per file, `blob.py`) and the manifest
package: the XML files below, each its own encrypted blob at the root of the manifest
container (sp-dev-docs `docs/apis/migration-manifest.md`; the format is SharePoint's content
migration package, [MS-PRIMEPF], constrained by that page):

    ExportSettings.xml   SourceType="FileShare" (mandatory since 2023-04-01,
                         migration-api-whats-new.md), IgnoreWebParts, the target list
    Manifest.xml         an SPObject/File per file: its id, folder, list, web, blob, size,
                         times, author, MD5 of the blob as stored, quickXorHash of its bytes
    SystemData.xml       schema version 15, the manifest's name, the web and list as system
                         objects
    UserGroupMap.xml     the users named as authors (may be empty: the service then warns)
    RootObjectMap.xml    the target list in the target web ("optional" on the current page,
                         required by earlier ones: sent)
    Requirements.xml, LookupListMap.xml, ViewFormsList.xml
                         empty roots, so the service does not warn that they are missing
    ArchivedFiles.xml    with `archive_small_files`: the zip archives of small files and
                         the files in each (`archive.py`); Manifest.xml describes those files
                         as any other, their FileValue naming the archive's member

Folders are not in packages: the round creates them through Graph before their files reach a
mover, so a file names its folder by the folder's SharePoint id (`sharepointIds
.listItemUniqueId`), which the page allows ("ID consistency": real ids of the target). Files
carry no list-item object or integer id: the service then allocates the item, rather than a
client guessing free integer ids in a list other tools write to as well.

Ids are deterministic (`file_id`): a file's id is a uuid5 of its list and its path there, so
a package submitted again replaces what an earlier submission of it imported, never
duplicating it (migration-content-package.md, "File overwriting"; migration-manifest.md,
"GUID consistency").

Each writer yields the document in pieces (`Iterator[str]`), one object at a time: a package
holds at most a few hundred files and the tree is never held whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

from sharelift.migration_api.archive import Archive

MANIFEST = "Manifest.xml"
CLAIMS_PREFIX = "i:0#.f|membership|"
"""How SharePoint Online writes an Entra ID user's login (migration-manifest.md, "User
identifiers": the Login is the UPN, as a claim)."""
_XML = '<?xml version="1.0" encoding="utf-8"?>\n'


def _ns(kind: str) -> str:
    return f"urn:deployment-{kind}-schema"


@dataclass(frozen=True)
class PackageTarget:
    """The target's real ids and URLs, read from the site through Graph (`site.py`)."""

    site_url: str
    """The absolute URL of the web (`https://contoso.sharepoint.com/sites/Team`)."""
    web_id: str
    web_url: str
    """The web's server-relative URL (`/sites/Team`, `/` for a root site)."""
    list_id: str
    list_url: str
    """The library's URL relative to the web (`Shared Documents`)."""

    def server_url(self, web_relative: str) -> str:
        """A web-relative URL made server-relative."""
        return f"{self.web_url.rstrip('/')}/{web_relative}"


@dataclass(frozen=True)
class ManifestFile:
    """One file of a package, as its manifest describes it."""

    file_id: str
    blob: str
    url: str
    """Web-relative (`Shared Documents/a/b.txt`)."""
    folder_id: str
    """Its folder's SharePoint id (the library's root folder's for a top-level file)."""
    size: int
    created: datetime
    modified: datetime
    md5: str
    quick_xor: str
    author: int | None
    """The user's `Id` in UserGroupMap.xml, or None (the service then uses System Account)."""

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PackageUser:
    """A user named as an author: `Id` in UserGroupMap.xml and their UPN."""

    id: int
    upn: str


def file_id(list_id: str, library_path: str) -> str:
    """The id a file at `library_path` (below the library's root, `/`-separated) has in every
    package: a uuid5 of the list and the path, case-folded as SharePoint compares names."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"file:{list_id.lower()}/{library_path.lower()}"))


def _time(when: datetime) -> str:
    """xs:dateTime in UTC without an offset, as the manifests' samples write times."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _attrs(**values: object) -> str:
    return " ".join(f"{name}={quoteattr(str(value))}" for name, value in values.items())


def export_settings(target: PackageTarget) -> Iterator[str]:
    yield _XML
    yield (
        f"<ExportSettings xmlns={quoteattr(_ns('exportsettings'))} "
        f"{_attrs(SiteUrl=target.site_url, FileLocation='', IncludeSecurity='None')} "
        f'SourceType="FileShare" IgnoreWebParts="true">\n'
    )
    yield "  <ExportObjects>\n"
    deployment = _attrs(Id=target.list_id, Type="List", ParentId=target.web_id)
    yield f"    <DeploymentObject {deployment} />\n"
    yield "  </ExportObjects>\n</ExportSettings>\n"


def system_data(target: PackageTarget) -> Iterator[str]:
    yield _XML
    yield f"<SystemData xmlns={quoteattr(_ns('systemdata'))}>\n"
    # "currently 15.0.0.0" and the site's UIVersion, "currently 15" (migration-manifest.md).
    version = _attrs(
        Version="15.0.0.0", Build="16.0.3111.1200", DatabaseVersion="11552", SiteVersion="15"
    )
    yield f"  <SchemaVersion {version} />\n"
    yield f"  <ManifestFiles>\n    <ManifestFile Name={quoteattr(MANIFEST)} />\n"
    yield "  </ManifestFiles>\n"
    yield "  <SystemObjects>\n"
    yield f"    <SystemObject {_attrs(Id=target.web_id, Type='Web', Url=target.web_url)} />\n"
    list_url = target.server_url(target.list_url)
    yield f"    <SystemObject {_attrs(Id=target.list_id, Type='List', Url=list_url)} />\n"
    yield "  </SystemObjects>\n  <RootWebOnlyLists />\n</SystemData>\n"


def root_object_map(target: PackageTarget) -> Iterator[str]:
    yield _XML
    yield f"<RootObjects xmlns={quoteattr(_ns('rootobjectmap'))}>\n"
    attrs = _attrs(
        Id=target.list_id,
        Type="List",
        ParentId=target.web_id,
        WebUrl=target.web_url,
        Url=target.server_url(target.list_url),
        IsDependency="false",
    )
    yield f"  <RootObject {attrs} />\n</RootObjects>\n"


def user_group_map(users: Iterable[PackageUser]) -> Iterator[str]:
    yield _XML
    yield f"<UserGroupMap xmlns={quoteattr(_ns('usergroupmap'))}>\n  <Users>\n"
    for user in users:
        attrs = _attrs(
            Id=user.id,
            Name=user.upn,
            Login=CLAIMS_PREFIX + user.upn,
            Email=user.upn,
            IsDomainGroup="false",
            IsSiteAdmin="false",
            IsDeleted="false",
        )
        yield f"    <User {attrs} />\n"
    yield "  </Users>\n  <Groups />\n</UserGroupMap>\n"


def empty_root(root: str, kind: str) -> Iterator[str]:
    yield _XML
    yield f"<{root} xmlns={quoteattr(_ns(kind))} />\n"


def manifest(target: PackageTarget, files: Iterable[ManifestFile]) -> Iterator[str]:
    """Manifest.xml: one SPObject of type SPFile per file (the element [MS-PRIMEPF] calls
    File, with the Migration API's `MD5Hash` and `Checksum` extensions)."""
    yield _XML
    yield f"<SPObjects xmlns={quoteattr(_ns('manifest'))}>\n"
    for f in files:
        users = {} if f.author is None else {"Author": f.author, "ModifiedBy": f.author}
        wrapper = _attrs(
            Id=f.file_id,
            ObjectType="SPFile",
            ParentId=f.folder_id,
            ParentWebId=target.web_id,
            ParentWebUrl=target.web_url,
            Url=target.server_url(f.url),
        )
        element = _attrs(
            Url=f.url,
            Id=f.file_id,
            ParentWebId=target.web_id,
            ParentWebUrl=target.web_url,
            Name=f.name,
            ListId=target.list_id,
            ParentId=f.folder_id,
            TimeCreated=_time(f.created),
            TimeLastModified=_time(f.modified),
            Version="1.0",
            FileValue=f.blob,
            FileSize=f.size,
            **users,
            MD5Hash=f.md5,
            Checksum=f.quick_xor,
        )
        yield f"  <SPObject {wrapper}>\n    <File {element} />\n  </SPObject>\n"
    yield "</SPObjects>\n"


def archived_files(archives: Iterable[Archive]) -> Iterator[str]:
    """ArchivedFiles.xml: each archive with its QuickXorHash and the FileValue of each file in
    it (`archive.py`; the page's sample has no namespace, and neither has this)."""
    yield _XML
    yield "<ArchivedFiles>\n"
    for archive in archives:
        yield f"  <ArchivedFile {_attrs(Name=archive.name, Checksum=archive.checksum)}>\n"
        for member in archive.members:
            yield f"    <File {_attrs(FileValue=member)} />\n"
        yield "  </ArchivedFile>\n"
    yield "</ArchivedFiles>\n"


def package_documents(
    target: PackageTarget,
    files: Iterable[ManifestFile],
    users: Iterable[PackageUser],
    archives: Sequence[Archive] = (),
) -> Iterator[tuple[str, Iterator[str]]]:
    """Every XML file of a manifest package: (blob name, its text in pieces). Manifest.xml
    reads `files` once, as it is written; ArchivedFiles.xml comes when there are archives."""
    yield "ExportSettings.xml", export_settings(target)
    yield "SystemData.xml", system_data(target)
    yield "UserGroupMap.xml", user_group_map(users)
    yield "RootObjectMap.xml", root_object_map(target)
    yield "Requirements.xml", empty_root("Requirements", "requirements")
    yield "LookupListMap.xml", empty_root("LookupLists", "lookuplistmap")
    yield "ViewFormsList.xml", empty_root("ViewFormsList", "viewformlist")
    if archives:
        yield "ArchivedFiles.xml", archived_files(archives)
    yield MANIFEST, manifest(target, files)


__all__ = [
    "MANIFEST",
    "ManifestFile",
    "PackageTarget",
    "PackageUser",
    "archived_files",
    "file_id",
    "package_documents",
]
