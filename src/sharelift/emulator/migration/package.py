"""Reading a Migration API package's XML files, as the import pipeline validates them.

The package format is SharePoint's content migration package ([MS-PRIMEPF]), constrained as
sp-dev-docs `docs/apis/migration-manifest.md` and `migration-api-overview.md` describe:

    ExportSettings.xml   required; `SourceType` mandatory since 2023-04-01
                         (`migration-api-whats-new.md`), from the documented list
    SystemData.xml       required; names every manifest in `ManifestFile` entries
    Manifest.xml (1+)    required; `SPObject` wrappers of Folder, File, ListItem, library
    UserGroupMap.xml     required (the 2013 pages call it UserGroup.xml: either is read);
                         without users, authors cannot be set (a warning)
    RootObjectMap.xml    optional; its List root must be the target's list in the target web
    Requirements.xml, LookupListMap.xml, ViewFormsList.xml
                         optional; a missing one is a warning, as the pages say
    ArchivedFiles.xml    optional; at most two zip archives of small files, each with the
                         `FileValue`s it holds (`migration-manifest.md`, "ArchivedFiles.xml";
                         `migration-content-package.md`, "Archive small files for performance")

Each file must have its root element in its namespace `urn:deployment-<x>-schema`, except
ArchivedFiles.xml, whose sample has none: its root is accepted in any namespace or none.
Anything this module refuses raises PackageError, which the worker reports as JobFatalError.
Whether the ids are the target's real ones is the worker's check (it knows the target); reading
the archives is the import's (`archives.py`).
"""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET  # the expat behind it refuses entity expansion bombs
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

SOURCE_TYPES = frozenset(
    {
        "AmazonS3",
        "AzureStorage",
        "Box",
        "Dropbox",
        "Egnyte",
        "FileShare",
        "GoogleCloudStorage",
        "GoogleDrive",
        "MicrosoftStream",
        "OneDrive",
        "SharePointOnline",
        "SharePointOnPremServer",
        "Other",
    }
)
"""The accepted `SourceType` values (migration-manifest.md, "Specify content source")."""

OPTIONAL_FILES = {
    "Requirements.xml": ("Requirements", ("requirements",)),
    "LookupListMap.xml": ("LookupLists", ("lookuplistmap",)),
    # Third-party generators write both spellings of this namespace.
    "ViewFormsList.xml": ("ViewFormsList", ("viewformlist", "viewformslist")),
}
USER_MAP_NAMES = ("UserGroupMap.xml", "UserGroup.xml")
ARCHIVES_NAME = "ArchivedFiles.xml"
MAX_ARCHIVES = 2
"""Archives per package ("Archive file per package: Two maximum")."""
CLAIMS_PREFIX = "i:0#.f|membership|"


class PackageError(Exception):
    """The package cannot be imported at all (JobFatalError)."""


def _ns(kind: str) -> str:
    return f"urn:deployment-{kind}-schema"


def _tag(element: ET.Element) -> tuple[str, str]:
    """(namespace, local name) of an element."""
    if element.tag.startswith("{"):
        ns, local = element.tag[1:].split("}", 1)
        return ns, local
    return "", element.tag


@dataclass(frozen=True)
class PackageUser:
    id: str
    name: str
    login: str
    email: str
    system_id: str
    is_deleted: bool

    @property
    def upn(self) -> str:
        """The UPN inside a claims login (`i:0#.f|membership|ann@contoso.com`), else the login."""
        login = self.login
        return login[len(CLAIMS_PREFIX) :] if login.lower().startswith(CLAIMS_PREFIX) else login


@dataclass(frozen=True)
class PackageObject:
    """One folder, file, library or list item of a manifest, with the attributes we use."""

    object_type: str
    """SPFolder, SPFile, SPDocumentLibrary, SPListItem (others are counted, not imported)."""
    id: str
    attrs: dict[str, str] = field(repr=False)
    manifest: str

    def get(self, name: str) -> str:
        return self.attrs.get(name, "")

    @property
    def url(self) -> str:
        return self.get("Url")


@dataclass(frozen=True)
class ArchivedFile:
    """One `ArchivedFile` of ArchivedFiles.xml: a zip blob of the content container and the
    `FileValue`s of the files it holds, each a member of that name."""

    name: str
    checksum: str
    """The QuickXorHash (base64) of the archive's plaintext; "" when not given."""
    members: tuple[str, ...]


@dataclass
class Package:
    """What the import needs from a package's XML files."""

    site_url: str
    source_type: str
    manifests: list[str]
    users: dict[str, PackageUser]
    root_lists: list[tuple[str, str]]
    """(list id, parent web id) of RootObjectMap.xml's List roots."""
    warnings: list[str]
    objects: list[PackageObject] = field(default_factory=list)
    archives: list[ArchivedFile] = field(default_factory=list)
    """ArchivedFiles.xml's archives, in its order (none without the file)."""


Fetch = Callable[[str], bytes | None]
"""Returns a manifest-container file's decrypted bytes, or None when the blob is absent."""


def _parse(name: str, data: bytes, root: str, kinds: tuple[str, ...] | None) -> ET.Element:
    """The root element of `name`, checked: its local name `root`, in the namespace of one of
    `kinds` (None: any namespace or none)."""
    try:
        element = ET.fromstring(data)  # noqa: S314 — expat refuses entity expansion
    except ET.ParseError as exc:
        raise PackageError(f"{name} is not well-formed XML: {exc}") from exc
    ns, local = _tag(element)
    if local != root:
        raise PackageError(f"{name}: the root element must be {root}, not {local}")
    if kinds is not None and ns not in {_ns(k) for k in kinds}:
        raise PackageError(f"{name}: the root element must be in the namespace {_ns(kinds[0])}")
    return element


def _children(element: ET.Element, local: str) -> Iterator[ET.Element]:
    for child in element.iter():
        if _tag(child)[1] == local:
            yield child


def guid(text: str) -> str | None:
    """A GUID in canonical lower-case form, or None (braces are accepted)."""
    try:
        return str(uuid.UUID(text.strip().strip("{}")))
    except (ValueError, AttributeError):
        return None


def parse_time(text: str) -> float | None:
    """An xs:dateTime as epoch seconds; times without an offset are taken as UTC."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def read_package(fetch: Fetch) -> Package:
    """Read and check the package's XML files through `fetch`; raises PackageError."""
    warnings: list[str] = []
    settings_xml = fetch("ExportSettings.xml")
    if settings_xml is None:
        raise PackageError("ExportSettings.xml is missing from the manifest container")
    settings = _parse("ExportSettings.xml", settings_xml, "ExportSettings", ("exportsettings",))
    source_type = settings.get("SourceType", "")
    if not source_type:
        raise PackageError("ExportSettings.xml: SourceType is required")
    if source_type not in SOURCE_TYPES:
        raise PackageError(f"ExportSettings.xml: SourceType '{source_type}' is not accepted")
    if not settings.get("SiteUrl"):
        raise PackageError("ExportSettings.xml: SiteUrl is required")

    system_xml = fetch("SystemData.xml")
    if system_xml is None:
        raise PackageError("SystemData.xml is missing from the manifest container")
    system = _parse("SystemData.xml", system_xml, "SystemData", ("systemdata",))
    manifests = [m.get("Name", "") for m in _children(system, "ManifestFile")]
    if not manifests or not all(manifests):
        raise PackageError("SystemData.xml lists no ManifestFile")

    users = _read_users(fetch, warnings)
    root_lists = _read_root_objects(fetch)
    for name, (root, kinds) in OPTIONAL_FILES.items():
        data = fetch(name)
        if data is None:
            warnings.append(f"{name} is missing")
        else:
            _parse(name, data, root, kinds)

    package = Package(
        site_url=settings.get("SiteUrl", ""),
        source_type=source_type,
        manifests=manifests,
        users=users,
        root_lists=root_lists,
        warnings=warnings,
    )
    for manifest in manifests:
        data = fetch(manifest)
        if data is None:
            raise PackageError(f"{manifest}, listed in SystemData.xml, is missing")
        package.objects.extend(_read_manifest(manifest, data))
    package.archives = _read_archives(fetch)
    referenced = {o.get("FileValue") for o in package.objects if o.object_type == "SPFile"}
    for archive in package.archives:
        for value in archive.members:
            if value not in referenced:
                warnings.append(
                    f"{ARCHIVES_NAME}: '{value}' of {archive.name} is the FileValue of no File"
                )
    return package


def _read_archives(fetch: Fetch) -> list[ArchivedFile]:
    """ArchivedFiles.xml's archives (none without the file); raises PackageError when there
    are more than two, or when one lacks a `Name` or a `FileValue` or repeats a `FileValue`:
    which archive holds a file must be unambiguous."""
    data = fetch(ARCHIVES_NAME)
    if data is None:
        return []
    root = _parse(ARCHIVES_NAME, data, "ArchivedFiles", None)
    archives = []
    seen: set[str] = set()
    for element in _children(root, "ArchivedFile"):
        name = element.get("Name", "")
        if not name:
            raise PackageError(f"{ARCHIVES_NAME}: an ArchivedFile has no Name")
        members = tuple(f.get("FileValue", "") for f in _children(element, "File"))
        for value in members:
            if not value:
                raise PackageError(f"{ARCHIVES_NAME}: a File of {name} has no FileValue")
            if value in seen:
                raise PackageError(f"{ARCHIVES_NAME}: '{value}' is listed more than once")
            seen.add(value)
        archives.append(ArchivedFile(name, element.get("Checksum", ""), members))
    if len(archives) > MAX_ARCHIVES:
        raise PackageError(
            f"{ARCHIVES_NAME} lists {len(archives)} archives; a package may have {MAX_ARCHIVES}"
        )
    return archives


def _read_users(fetch: Fetch, warnings: list[str]) -> dict[str, PackageUser]:
    for name in USER_MAP_NAMES:
        data = fetch(name)
        if data is None:
            continue
        root = _parse(name, data, "UserGroupMap", ("usergroupmap",))
        users: dict[str, PackageUser] = {}
        for u in _children(root, "User"):
            user = PackageUser(
                id=u.get("Id", ""),
                name=u.get("Name", ""),
                login=u.get("Login", ""),
                email=u.get("Email", ""),
                system_id=u.get("SystemId", ""),
                is_deleted=u.get("IsDeleted", "false").lower() == "true",
            )
            if user.id in users or any(
                o.login.lower() == user.login.lower() for o in users.values()
            ):
                # "Identify a User only once in a single package" (enforced since 2022).
                raise PackageError(f"{name}: user '{user.login}' appears more than once")
            users[user.id] = user
        if not users:
            warnings.append(f"{name} has no users: authors are not set")
        return users
    raise PackageError("UserGroupMap.xml is missing from the manifest container")


def _read_root_objects(fetch: Fetch) -> list[tuple[str, str]]:
    data = fetch("RootObjectMap.xml")
    if data is None:
        return []
    root = _parse("RootObjectMap.xml", data, "RootObjects", ("rootobjectmap",))
    lists = []
    for obj in _children(root, "RootObject"):
        if obj.get("Type") == "List":
            list_id, web_id = guid(obj.get("Id", "")), guid(obj.get("ParentId", ""))
            if list_id is None or web_id is None:
                raise PackageError("RootObjectMap.xml: a List root needs Id and ParentId GUIDs")
            lists.append((list_id, web_id))
    return lists


_INNER = {"SPFolder": "Folder", "SPFile": "File", "SPListItem": "ListItem"}


def _read_manifest(name: str, data: bytes) -> list[PackageObject]:
    root = _parse(name, data, "SPObjects", ("manifest",))
    objects = []
    for wrapper in root:
        if _tag(wrapper)[1] != "SPObject":
            continue
        object_type = wrapper.get("ObjectType", "")
        attrs = dict(wrapper.attrib)
        inner_name = _INNER.get(object_type)
        if inner_name is not None:
            inner = next((c for c in wrapper if _tag(c)[1] == inner_name), None)
            if inner is None:
                raise PackageError(f"{name}: an {object_type} object has no {inner_name} element")
            attrs |= dict(inner.attrib)
        object_id = guid(attrs.get("Id", ""))
        if object_id is None:
            raise PackageError(f"{name}: an {object_type or 'SPObject'} has no valid Id")
        objects.append(PackageObject(object_type, object_id, attrs, name))
    return objects
