"""Office Open XML files to try the emulator's libraries with (`sharelift demo`, the tests,
the benchmarks), made with zipfile: what Word, Excel and PowerPoint write, in miniature
(content types, package relationships, core and extended properties, the main part with its
relationships, styles, and media of a chosen size). A site library of the emulator rewrites
their metadata parts on commit, as SharePoint does (docs/emulator.md).

    data = office_file("docx", seed=7, media_bytes=200_000)
    write_office_tree(root, count=50)          # docx/xlsx/pptx of realistic sizes

Media are random bytes (incompressible, like photos): the file's size is about the media's.
"""

from __future__ import annotations

import io
import os
import random
import zipfile
from pathlib import Path

_MAIN = {
    "docx": (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        "word",
    ),
    "xlsx": (
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        "xl",
    ),
    "pptx": (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        "ppt",
    ),
    "dotx": (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
        "word",
    ),
}
_OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
)
_CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
_APP = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties"
_IMAGE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"
_STYLES = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"
_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'


def office_file(kind: str, *, seed: int, media_bytes: int = 0, paragraphs: int = 40) -> bytes:
    """A `kind` ("docx", "dotx", "xlsx" or "pptx") package; `media_bytes` of random image data in
    one media part (none at 0); the text varies with `seed`."""
    main, main_type, folder = _MAIN[kind]
    rng = random.Random(seed)
    words = ["migration", "share", "library", "budget", "report", "quarter", "draft", "final"]
    text = "".join(
        f"<p>{' '.join(rng.choice(words) for _ in range(12))} {seed}-{n}</p>"
        for n in range(paragraphs)
    )
    rels = [(_STYLES, "styles.xml")]
    if media_bytes:
        rels.append((_IMAGE, "media/image1.png"))
    parts: list[tuple[str, bytes]] = [
        (
            "[Content_Types].xml",
            (
                _DECL
                + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                + '<Default Extension="rels" '
                'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                + '<Default Extension="xml" ContentType="application/xml"/>'
                + '<Default Extension="png" ContentType="image/png"/>'
                + f'<Override PartName="/{main}" ContentType="{main_type}"/>'
                + f'<Override PartName="/{folder}/styles.xml" ContentType="application/'
                f'vnd.openxmlformats-officedocument.{_styles_type(kind)}+xml"/>'
                + '<Override PartName="/docProps/core.xml" '
                'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
                + '<Override PartName="/docProps/app.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.extended-properties+xml"/>' + "</Types>"
            ).encode(),
        ),
        (
            "_rels/.rels",
            _rels(
                [(_OFFICE_DOCUMENT, main), (_CORE, "docProps/core.xml"), (_APP, "docProps/app.xml")]
            ),
        ),
        (
            "docProps/core.xml",
            (
                _DECL
                + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
                'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
                'xmlns:dcterms="http://purl.org/dc/terms/" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                + f"<dc:title>Document {seed}</dc:title><dc:creator>Megan</dc:creator>"
                + '<dcterms:created xsi:type="dcterms:W3CDTF">2024-03-01T10:00:00Z'
                "</dcterms:created></cp:coreProperties>"
            ).encode(),
        ),
        (
            "docProps/app.xml",
            (
                _DECL + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
                'extended-properties"><Application>Microsoft Office</Application>'
                f"<Company>Contoso</Company><Words>{paragraphs * 13}</Words></Properties>"
            ).encode(),
        ),
        (main, f"{_DECL}<document><body>{text}</body></document>".encode()),
        (f"{folder}/_rels/{main.rsplit('/', 1)[1]}.rels", _rels(rels)),
        (f"{folder}/styles.xml", f"{_DECL}<styles><style id='Normal'/></styles>".encode()),
    ]
    if media_bytes:
        parts.append((f"{folder}/media/image1.png", rng.randbytes(media_bytes)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts:
            zf.writestr(name, data)
    return out.getvalue()


def _styles_type(kind: str) -> str:
    return {
        "docx": "wordprocessingml.styles",
        "dotx": "wordprocessingml.styles",
        "xlsx": "spreadsheetml.styles",
        "pptx": "presentationml.presProps",
    }[kind]


def _rels(rels: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f'<Relationship Id="rId{n}" Type="{kind}" Target="{target}"/>'
        for n, (kind, target) in enumerate(rels, 1)
    )
    return (
        _DECL
        + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + body
        + "</Relationships>"
    ).encode()


def write_office_tree(root: Path, count: int, *, seed: int = 1) -> dict[str, bytes]:
    """`count` Office files in `root` (docx, xlsx and pptx in turn), of sizes a department
    share holds: mostly tens to hundreds of KiB, a few of several MiB. Returns them by
    relative path."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    kinds = ("docx", "xlsx", "pptx")
    for n in range(count):
        kind = kinds[n % 3]
        media = rng.choice([0, 20_000, 60_000, 150_000, 400_000, 1_500_000, 4_000_000])
        data = office_file(kind, seed=seed * 1000 + n, media_bytes=media)
        rel = f"{kind}/file-{n:03d}.{kind}"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (1_700_000_000 + n, 1_700_000_000 + n))
        files[rel] = data
    return files
