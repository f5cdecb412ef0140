"""SharePoint's rewrite of an Office Open XML package committed to a document library.

When a file is uploaded to a library, SharePoint runs the document parser registered for its
type; for the OOXML types that is its Office parser, which demotes the library's columns and
content type into the file ("Document Property Promotion and Demotion",
https://learn.microsoft.com/previous-versions/office/developer/sharepoint-2010/aa543341(v=office.14);
the parser also "updates content type information", "Custom Document Parsers", aa544149). What
it writes is the content type's metadata, as Office reads it from a package:

    customXml/itemN.xml + itemPropsN.xml + _rels/itemN.xml.rels   (added, or replaced when the
        package already holds SharePoint's): the item's properties (`p:properties`, with its
        `documentManagement` values), the content type's schema (`ct:contentTypeSchema`) and
        the library's forms (`FormTemplates`), each with a fresh `ds:itemID`
    docProps/custom.xml       the `ContentTypeId` property (the part is created if missing)
    docProps/core.xml         written back (demotion of the core columns; values unchanged)
    [Content_Types].xml       overrides for the parts above
    _rels/.rels               only when docProps/custom.xml had to be created
    the main part's rels      (word/_rels/document.xml.rels, xl/_rels/workbook.xml.rels, ...)
                              only when customXml items were added

Every other part keeps its exact bytes (a forensic reading found SharePoint adds its XML and
changes nothing else: jjrboucher/MS-Word-Parser#22). The package is written anew, as the
service's packaging layer does: entries re-compressed, in a new order, with new time stamps,
so the container's bytes change even where no part did. The `ds:itemID` and schema version ids
are new at every commit, so two uploads of one file store different bytes (rclone/rclone#9767
saw the size change from one upload of an unchanged file to the next).

`rewrite_package(source, target, context)` does it; a file that is not an OOXML package (not a
ZIP, no `[Content_Types].xml`, no main part, an encrypted entry, XML that does not parse) is
left alone, as the service stores what its parser cannot read.
"""

from __future__ import annotations

import shutil
import uuid
import xml.etree.ElementTree as ET  # the expat behind it refuses entity expansion bombs
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_OFFICE_DOCUMENT = f"{_DOC_RELS}/officeDocument"
REL_CUSTOM_XML = f"{_DOC_RELS}/customXml"
REL_CUSTOM_XML_PROPS = f"{_DOC_RELS}/customXmlProps"
REL_CUSTOM_PROPERTIES = f"{_DOC_RELS}/custom-properties"
CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
DS_NS = "http://schemas.openxmlformats.org/officeDocument/2006/customXml"
META_PROPERTIES_NS = "http://schemas.microsoft.com/office/2006/metadata/properties"
CONTENT_TYPE_NS = "http://schemas.microsoft.com/office/2006/metadata/contentType"
META_ATTRIBUTES_NS = "http://schemas.microsoft.com/office/2006/metadata/properties/metaAttributes"
FORMS_NS = "http://schemas.microsoft.com/sharepoint/v3/contenttype/forms"
PARTNER_CONTROLS_NS = "http://schemas.microsoft.com/office/infopath/2007/PartnerControls"
CT_CUSTOM_XML_PROPS = "application/vnd.openxmlformats-officedocument.customXmlProperties+xml"
CT_CUSTOM_PROPERTIES = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
CT_RELATIONSHIPS = "application/vnd.openxmlformats-package.relationships+xml"
USER_DEFINED_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
CONTENT_TYPES_PART = "[Content_Types].xml"
PACKAGE_RELS_PART = "_rels/.rels"
CORE_PART = "docProps/core.xml"
CUSTOM_PART = "docProps/custom.xml"

EXTENSIONS = frozenset(
    {
        "docx", "docm", "dotx", "dotm",
        "xlsx", "xlsm", "xltx", "xltm",
        "pptx", "pptm", "potx", "potm", "ppsx", "ppsm",
    }
)  # fmt: skip
"""The OOXML types SharePoint's Office parser is registered for (wbaer.net, "Document Property
Promotion and Demotion Overview and Considerations", SharePoint 2013's DOCPARSE.XML)."""

_DOS_EPOCH = (1980, 1, 1, 0, 0, 0)
_COPY_CHUNK = 1024 * 1024
_XML_DECLARATION = '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\r\n'

# The roots of the three customXml items SharePoint writes, by what identifies each.
_SHAREPOINT_ITEMS = (
    ("properties", f"{{{META_PROPERTIES_NS}}}properties"),
    ("schema", f"{{{CONTENT_TYPE_NS}}}contentTypeSchema"),
    ("forms", f"{{{FORMS_NS}}}FormTemplates"),
)


class NotAPackage(Exception):
    """The bytes are not an OOXML package SharePoint's parser can read."""


_UNREADABLE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ET.ParseError,
    KeyError,
    OSError,
    EOFError,
    ValueError,  # UnicodeDecodeError among them
    RuntimeError,
    NotImplementedError,  # a compression method zipfile lacks
    zlib.error,
)
"""What reading a damaged or foreign ZIP can raise."""


@dataclass(frozen=True)
class LibraryContext:
    """What the library demotes into a document: its Document content type's id."""

    content_type_id: str
    """`0x0101` (Document) `00` and the library's own 32 hex digits."""


@dataclass
class _Package:
    names: list[str]
    content_types: tuple[list[tuple[str, str]], list[tuple[str, str]]]
    """(defaults (extension, type), overrides (part name, type))."""
    package_rels: list[dict[str, str]]
    main_part: str


def rewrite_package(source: Path, target: Path, context: LibraryContext) -> None:
    """Write to `target` the package `source` as the library stores it; raises NotAPackage
    (and writes nothing) when `source` is not an OOXML package."""
    try:
        with zipfile.ZipFile(source) as zin:
            package = _read_package(zin)
            replaced = _rewritten_parts(zin, package, context)
            _write(zin, package, replaced, target)
    except _UNREADABLE as exc:
        target.unlink(missing_ok=True)
        raise NotAPackage(f"{type(exc).__name__}: {exc}") from exc
    except NotAPackage:
        target.unlink(missing_ok=True)
        raise


def _parse(zin: zipfile.ZipFile, name: str) -> ET.Element:
    return ET.fromstring(zin.read(name))  # noqa: S314 — expat refuses entity expansion


def _read_package(zin: zipfile.ZipFile) -> _Package:
    infos = zin.infolist()
    if any(info.flag_bits & 0x1 for info in infos):
        raise NotAPackage("an entry is encrypted")
    names = [info.filename for info in infos]
    if CONTENT_TYPES_PART not in names or PACKAGE_RELS_PART not in names:
        raise NotAPackage("no [Content_Types].xml or _rels/.rels")
    types = _parse(zin, CONTENT_TYPES_PART)
    defaults = [
        (d.get("Extension", ""), d.get("ContentType", ""))
        for d in types.iter(f"{{{CT_NS}}}Default")
    ]
    overrides = [
        (o.get("PartName", ""), o.get("ContentType", ""))
        for o in types.iter(f"{{{CT_NS}}}Override")
    ]
    rels = _relationships(_parse(zin, PACKAGE_RELS_PART))
    main = next((r["Target"] for r in rels if r.get("Type") == REL_OFFICE_DOCUMENT), None)
    if main is None or main.lstrip("/") not in names:
        raise NotAPackage("no main part")
    return _Package(names, (defaults, overrides), rels, main.lstrip("/"))


def _relationships(root: ET.Element) -> list[dict[str, str]]:
    return [dict(r.attrib) for r in root.iter(f"{{{RELS_NS}}}Relationship")]


def _rels_part_of(part: str) -> str:
    folder, _, leaf = part.rpartition("/")
    return f"{folder}/_rels/{leaf}.rels" if folder else f"_rels/{leaf}.rels"


def _sharepoint_items(zin: zipfile.ZipFile, names: list[str]) -> dict[str, str]:
    """Which customXml/itemN.xml already holds each of SharePoint's items (role -> part)."""
    found: dict[str, str] = {}
    for name in names:
        leaf = name.removeprefix("customXml/")
        if leaf == name or "/" in leaf or not leaf.startswith("item") or "Props" in leaf:
            continue
        try:
            tag = _parse(zin, name).tag
        except ET.ParseError:
            continue
        for role, root in _SHAREPOINT_ITEMS:
            if tag == root and role not in found:
                found[role] = name
    return found


def _rewritten_parts(
    zin: zipfile.ZipFile, package: _Package, context: LibraryContext
) -> dict[str, bytes]:
    """Every part SharePoint writes, by name, with its new content."""
    parts: dict[str, bytes] = {}
    defaults, overrides = package.content_types
    overrides = list(overrides)
    existing = _sharepoint_items(zin, package.names)
    taken = {n for n in package.names if n.startswith("customXml/item")}
    next_n = 1
    added: list[str] = []
    for role, _ in _SHAREPOINT_ITEMS:
        item = existing.get(role)
        if item is None:
            while f"customXml/item{next_n}.xml" in taken:
                next_n += 1
            item = f"customXml/item{next_n}.xml"
            taken.add(item)
            added.append(item)
        n = item.removeprefix("customXml/item").removesuffix(".xml")
        props = f"customXml/itemProps{n}.xml"
        parts[item] = _item_xml(role, context)
        parts[props] = _item_props_xml(role)
        parts[_rels_part_of(item)] = _rels_xml(
            [{"Id": "rId1", "Type": REL_CUSTOM_XML_PROPS, "Target": f"itemProps{n}.xml"}]
        )
        _set_override(overrides, f"/{props}", CT_CUSTOM_XML_PROPS)
        if not any(ext.lower() == "xml" for ext, _ in defaults):
            _set_override(overrides, f"/{item}", "application/xml")
    if added:
        main_rels = _rels_part_of(package.main_part)
        rels = _relationships(_parse(zin, main_rels)) if main_rels in package.names else []
        depth = package.main_part.count("/")
        for item in added:
            rels.append(
                {
                    "Id": _free_id(rels),
                    "Type": REL_CUSTOM_XML,
                    "Target": "../" * depth + item,
                }
            )
        parts[main_rels] = _rels_xml(rels)
        if not any(ext.lower() == "rels" for ext, _ in defaults):
            defaults = [*defaults, ("rels", CT_RELATIONSHIPS)]
    custom_target = next(
        (r["Target"] for r in package.package_rels if r.get("Type") == REL_CUSTOM_PROPERTIES),
        None,
    )
    custom_part = custom_target.lstrip("/") if custom_target else CUSTOM_PART
    if custom_target is None or custom_part not in package.names:
        rels = [r for r in package.package_rels if r.get("Type") != REL_CUSTOM_PROPERTIES]
        rels.append({"Id": _free_id(rels), "Type": REL_CUSTOM_PROPERTIES, "Target": CUSTOM_PART})
        parts[PACKAGE_RELS_PART] = _rels_xml(rels)
        custom_part = CUSTOM_PART
        parts[custom_part] = _custom_xml(None, context)
    else:
        parts[custom_part] = _custom_xml(_parse(zin, custom_part), context)
    _set_override(overrides, f"/{custom_part}", CT_CUSTOM_PROPERTIES)
    if CORE_PART in package.names:
        parts[CORE_PART] = _written_back(zin.read(CORE_PART))
    parts[CONTENT_TYPES_PART] = _content_types_xml(defaults, overrides)
    return parts


def _set_override(overrides: list[tuple[str, str]], part: str, content_type: str) -> None:
    overrides[:] = [(p, t) for p, t in overrides if p.lower() != part.lower()]
    overrides.append((part, content_type))


def _free_id(rels: list[dict[str, str]]) -> str:
    used = {r.get("Id") for r in rels}
    n = 1
    while f"rId{n}" in used:
        n += 1
    return f"rId{n}"


def _guid() -> str:
    return "{" + str(uuid.uuid4()).upper() + "}"


def _item_xml(role: str, context: LibraryContext) -> bytes:
    if role == "properties":
        body = (
            f'<p:properties xmlns:p="{META_PROPERTIES_NS}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns:pc="{PARTNER_CONTROLS_NS}"><documentManagement/></p:properties>'
        )
    elif role == "schema":
        body = (
            f'<ct:contentTypeSchema ct:_="" ma:_="" ma:contentTypeName="Document" '
            f'ma:contentTypeID="{context.content_type_id}" ma:contentTypeVersion="1" '
            'ma:contentTypeDescription="Create a new document." ma:contentTypeScope="" '
            f'ma:versionID="{uuid.uuid4().hex}" xmlns:ct="{CONTENT_TYPE_NS}" '
            f'xmlns:ma="{META_ATTRIBUTES_NS}"><xsd:schema '
            'targetNamespace="http://schemas.microsoft.com/office/2006/metadata/properties" '
            'ma:root="true" ma:fieldsID="' + uuid.uuid4().hex + '" ns2:_="" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'xmlns:p="{META_PROPERTIES_NS}" xmlns:ns2="{PARTNER_CONTROLS_NS}">'
            '<xsd:element name="properties"><xsd:complexType><xsd:sequence>'
            '<xsd:element name="documentManagement"><xsd:complexType><xsd:all/>'
            "</xsd:complexType></xsd:element></xsd:sequence></xsd:complexType></xsd:element>"
            "</xsd:schema></ct:contentTypeSchema>"
        )
    else:
        return (
            '<?mso-contentType?><FormTemplates xmlns="' + FORMS_NS + '">'
            "<Display>DocumentLibraryForm</Display><Edit>DocumentLibraryForm</Edit>"
            "<New>DocumentLibraryForm</New></FormTemplates>"
        ).encode()
    return (_XML_DECLARATION + body).encode()


def _item_props_xml(role: str) -> bytes:
    uris = {
        "properties": [META_PROPERTIES_NS, PARTNER_CONTROLS_NS],
        "schema": [CONTENT_TYPE_NS],
        "forms": [FORMS_NS],
    }[role]
    refs = "".join(f'<ds:schemaRef ds:uri="{uri}"/>' for uri in uris)
    return (
        f'{_XML_DECLARATION}<ds:datastoreItem ds:itemID="{_guid()}" xmlns:ds="{DS_NS}">'
        f"<ds:schemaRefs>{refs}</ds:schemaRefs></ds:datastoreItem>"
    ).encode()


def _rels_xml(rels: list[dict[str, str]]) -> bytes:
    body = "".join(
        "<Relationship " + " ".join(f"{k}={quoteattr(v)}" for k, v in rel.items()) + "/>"
        for rel in rels
    )
    return f'{_XML_DECLARATION}<Relationships xmlns="{RELS_NS}">{body}</Relationships>'.encode()


def _content_types_xml(defaults: list[tuple[str, str]], overrides: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<Default Extension={quoteattr(e)} ContentType={quoteattr(t)}/>" for e, t in defaults
    )
    body += "".join(
        f"<Override PartName={quoteattr(p)} ContentType={quoteattr(t)}/>" for p, t in overrides
    )
    return f'{_XML_DECLARATION}<Types xmlns="{CT_NS}">{body}</Types>'.encode()


def _custom_xml(existing: ET.Element | None, context: LibraryContext) -> bytes:
    """docProps/custom.xml with `ContentTypeId` set, every other property kept."""
    kept: list[str] = []
    pids = [1]
    for prop in [] if existing is None else existing.iter(f"{{{CUSTOM_NS}}}property"):
        if prop.get("name") == "ContentTypeId":
            continue
        pid = prop.get("pid", "")
        pids.append(int(pid) if pid.isdigit() else 1)
        values = "".join(_vt_xml(child) for child in prop)
        attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in prop.attrib.items())
        kept.append(f"<property {attrs}>{values}</property>")
    ours = (
        f'<property fmtid="{USER_DEFINED_FMTID}" pid="{max(pids) + 1}" name="ContentTypeId">'
        f"<vt:lpwstr>{escape(context.content_type_id)}</vt:lpwstr></property>"
    )
    return (
        f'{_XML_DECLARATION}<Properties xmlns="{CUSTOM_NS}" xmlns:vt="{VT_NS}">'
        f"{ours}{''.join(kept)}</Properties>"
    ).encode()


def _vt_xml(element: ET.Element) -> str:
    """A `vt:` value element (and its children) written with the `vt` prefix."""
    local = element.tag.rpartition("}")[2]
    inner = escape(element.text or "") + "".join(_vt_xml(child) for child in element)
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in element.attrib.items() if "}" not in k)
    return f"<vt:{local}{attrs}>{inner}</vt:{local}>"


def _written_back(data: bytes) -> bytes:
    """A part written again by SharePoint's writer: the same values under its own XML
    declaration (the element bytes are kept, so prefixes that attribute values name, such as
    `xsi:type="dcterms:W3CDTF"`, stay bound)."""
    ET.fromstring(data)  # noqa: S314 — checks it is XML; expat refuses entity expansion
    text = data.decode("utf-8-sig")
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :].lstrip()
    return (_XML_DECLARATION + text).encode()


def _write(
    zin: zipfile.ZipFile, package: _Package, replaced: dict[str, bytes], target: Path
) -> None:
    """The new container: [Content_Types].xml and the package rels first, then every other
    part in its old order (unchanged bytes streamed through), then the new parts."""
    order = [CONTENT_TYPES_PART, PACKAGE_RELS_PART]
    order += [n for n in package.names if n not in order]
    order += [n for n in replaced if n not in order]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zout:
        for name in order:
            info = zipfile.ZipInfo(name, _DOS_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in replaced:
                zout.writestr(info, replaced[name])
                continue
            info.file_size = zin.getinfo(name).file_size  # lets zipfile choose ZIP64 itself
            with zin.open(name) as src, zout.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK)
