"""SharePoint's rewrite of a binary Office file (doc, xls, ppt, ...) committed to a library.

The binary formats are OLE compound files ([MS-CFB]); their document properties live in two
property-set streams ([MS-OLEPS]), `\\x05SummaryInformation` and
`\\x05DocumentSummaryInformation`, the second of which holds the user-defined properties
(FMTID `{D5CDD505-2E9C-101B-9397-08002B2CF9AE}`) where SharePoint's parser demotes the
library's `ContentTypeId`, as it does into an OOXML package's docProps/custom.xml. Users see
these files change too: abraunegg/onedrive#2654 ("doc/docx/xls/xlsx"), rclone/rclone#4890 (a
.doc stored 11,264 bytes larger, 22 sectors of 512) and #2036.

The emulator writes `ContentTypeId` into the user-defined section of
`\\x05DocumentSummaryInformation` (adding the section when missing, keeping every other
property) and writes the compound file anew (same sector size, same directory entries; the
sectors laid out afresh), so its size and hash change while every other stream keeps its
exact bytes. A file that is not a compound file, or has no DocumentSummaryInformation stream,
or whose property set it cannot read, is stored as sent.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

EXTENSIONS = frozenset({"doc", "dot", "xls", "xlt", "ppt", "pot", "pps"})
"""The binary Office types, each parsed by SharePoint for its properties (the Office parser
covers the compound-file formats of Word, Excel and PowerPoint as well)."""

SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
DOC_SUMMARY_STREAM = "\x05DocumentSummaryInformation"
USER_DEFINED_FMTID = uuid.UUID("D5CDD505-2E9C-101B-9397-08002B2CF9AE").bytes_le
_FREE, _END, _FATSECT, _DIFSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFC
_MINI_SECTOR = 64
_CUTOFF = 4096
_ENTRY = 128
_STREAM, _ROOT = 2, 5
_VT_I2, _VT_LPWSTR = 0x0002, 0x001F
_CODEPAGE_UNICODE = 1200


class NotACompoundFile(Exception):
    """The bytes are not a compound file whose properties SharePoint's parser can write."""


def rewrite_compound_file(source: Path, target: Path, content_type_id: str) -> None:
    """Write to `target` the compound file `source` as a library stores it; raises
    NotACompoundFile (writing nothing) when the parser cannot read it."""
    data = source.read_bytes()
    try:
        cfb = _CompoundFile.read(data)
        index = cfb.stream_index(DOC_SUMMARY_STREAM)
        cfb.streams[index] = _with_content_type(cfb.streams[index], content_type_id)
        target.write_bytes(cfb.write())
    except (struct.error, IndexError, ValueError, KeyError) as exc:
        target.unlink(missing_ok=True)
        raise NotACompoundFile(f"{type(exc).__name__}: {exc}") from exc


@dataclass
class _CompoundFile:
    """A compound file as its directory entries (raw, 128 bytes each) and stream contents."""

    sector_size: int
    entries: list[bytearray]
    streams: dict[int, bytes]
    """Stream contents by directory entry index."""

    @classmethod
    def read(cls, data: bytes) -> _CompoundFile:
        if data[:8] != SIGNATURE:
            raise ValueError("not a compound file")
        major, order, shift, mini_shift = struct.unpack_from("<HHHH", data, 26)
        if order != 0xFFFE or (major, shift) not in ((3, 9), (4, 12)) or mini_shift != 6:
            raise ValueError("unsupported compound file header")
        size = 1 << shift
        n_fat, first_dir, _, cutoff, first_mini, _, first_difat, n_difat = struct.unpack_from(
            "<IIIIIIII", data, 44
        )
        if cutoff != _CUTOFF:
            raise ValueError("unsupported mini stream cutoff")

        def sector(n: int) -> bytes:
            start = (n + 1) * size
            if n >= _DIFSECT or start >= len(data):
                raise ValueError(f"sector {n} is outside the file")
            return data[start : start + size].ljust(size, b"\0")

        fat_ids = list(struct.unpack_from("<109I", data, 76))
        next_difat, per = first_difat, size // 4 - 1
        for _ in range(n_difat):
            block = struct.unpack(f"<{per + 1}I", sector(next_difat))
            fat_ids += block[:per]
            next_difat = block[per]
        fat: list[int] = []
        for n in fat_ids[:n_fat]:
            fat += struct.unpack(f"<{size // 4}I", sector(n))

        def chain(start: int, table: list[int]) -> list[int]:
            out: list[int] = []
            while start != _END:
                if start >= len(table) or len(out) > len(table):
                    raise ValueError("a broken sector chain")
                out.append(start)
                start = table[start]
            return out

        directory = b"".join(sector(n) for n in chain(first_dir, fat))
        entries = [bytearray(directory[i : i + _ENTRY]) for i in range(0, len(directory), _ENTRY)]
        if not entries or entries[0][66] != _ROOT:
            raise ValueError("no root entry")
        root_start, root_size = _extent(entries[0])
        mini_data = b"".join(sector(n) for n in chain(root_start, fat))[:root_size]
        mini_fat: list[int] = []
        if first_mini != _END:
            raw = b"".join(sector(n) for n in chain(first_mini, fat))
            mini_fat = list(struct.unpack(f"<{len(raw) // 4}I", raw))
        streams: dict[int, bytes] = {}
        for index, entry in enumerate(entries):
            if entry[66] != _STREAM:
                continue
            start, length = _extent(entry)
            if length == 0:
                streams[index] = b""
            elif length < _CUTOFF:
                streams[index] = b"".join(
                    mini_data[n * _MINI_SECTOR : (n + 1) * _MINI_SECTOR]
                    for n in chain(start, mini_fat)
                )[:length]
            else:
                streams[index] = b"".join(sector(n) for n in chain(start, fat))[:length]
            if len(streams[index]) != length:
                raise ValueError("a stream is shorter than its directory entry says")
        return cls(size, entries, streams)

    def stream_index(self, name: str) -> int:
        for index in self.streams:
            entry = self.entries[index]
            length = struct.unpack_from("<H", entry, 64)[0]
            if entry[: max(length - 2, 0)].decode("utf-16-le", "replace") == name:
                return index
        raise KeyError(f"no {name!r} stream")

    def write(self) -> bytes:
        """The compound file laid out afresh: FAT, DIFAT, directory, mini FAT, mini stream,
        then the large streams, each contiguous."""
        size = self.sector_size
        mini = bytearray()
        mini_fat: list[int] = []
        large: list[tuple[int, bytes]] = []
        for index, content in sorted(self.streams.items()):
            if not content:
                _set_extent(self.entries[index], _END, 0)
            elif len(content) < _CUTOFF:
                first = len(mini_fat)
                count = -(-len(content) // _MINI_SECTOR)
                mini_fat += [*range(first + 1, first + count), _END]
                mini += content.ljust(count * _MINI_SECTOR, b"\0")
                _set_extent(self.entries[index], first, len(content))
            else:
                large.append((index, content))
        raw_mini_fat = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
        directory = b"".join(self.entries)
        blocks = [directory, raw_mini_fat, bytes(mini), *(c for _, c in large)]
        counts = [-(-len(b) // size) for b in blocks]
        per_fat, per_difat = size // 4, size // 4 - 1
        n_fat = n_difat = 0
        while True:  # the FAT also maps its own sectors and the DIFAT's
            total = sum(counts) + n_fat + n_difat
            need_fat = -(-total // per_fat)
            need_difat = max(0, -(-(need_fat - 109) // per_difat))
            if (need_fat, need_difat) == (n_fat, n_difat):
                break
            n_fat, n_difat = need_fat, need_difat
        fat = [_FATSECT] * n_fat + [_DIFSECT] * n_difat
        starts: list[int] = []
        for count in counts:
            starts.append(len(fat) if count else _END)
            fat += [*range(len(fat) + 1, len(fat) + count), _END] if count else []
        fat += [_FREE] * (n_fat * per_fat - len(fat))
        dir_start, mini_fat_start, mini_start, *large_starts = starts
        _set_extent(self.entries[0], mini_start, len(mini))
        for (index, content), start in zip(large, large_starts, strict=True):
            _set_extent(self.entries[index], start, len(content))
        directory = b"".join(self.entries)  # with the extents just set
        fat_ids = list(range(n_fat))
        difat_ids = list(range(n_fat, n_fat + n_difat))
        header = bytearray(512)
        header[:8] = SIGNATURE
        struct.pack_into(
            "<HHHHH", header, 24, 0x3E, 3 if size == 512 else 4, 0xFFFE, size.bit_length() - 1, 6
        )
        struct.pack_into(
            "<IIIIIIIII",
            header,
            40,
            counts[0] if size == 4096 else 0,
            n_fat,
            dir_start,
            0,
            _CUTOFF,
            mini_fat_start,
            counts[1],
            difat_ids[0] if difat_ids else _END,
            n_difat,
        )
        head = fat_ids[:109] + [_FREE] * (109 - min(n_fat, 109))
        struct.pack_into("<109I", header, 76, *head)
        out = bytearray(header.ljust(size, b"\0"))
        out += struct.pack(f"<{len(fat[: n_fat * per_fat])}I", *fat[: n_fat * per_fat])
        rest = fat_ids[109:]
        for i in range(n_difat):
            ids = rest[i * per_difat : (i + 1) * per_difat]
            following = difat_ids[i + 1] if i + 1 < n_difat else _END
            ids += [_FREE] * (per_difat - len(ids))
            out += struct.pack(f"<{per_difat + 1}I", *ids, following)
        for block, count in zip([directory, *blocks[1:]], counts, strict=True):
            out += block.ljust(count * size, b"\0")
        return bytes(out)


def _extent(entry: bytearray) -> tuple[int, int]:
    start, length = struct.unpack_from("<IQ", entry, 116)
    return start, length & 0xFFFFFFFF  # version 3 files may leave the high half unset


def _set_extent(entry: bytearray, start: int, length: int) -> None:
    struct.pack_into("<IQ", entry, 116, start, length)


def _with_content_type(stream: bytes, content_type_id: str) -> bytes:
    """DocumentSummaryInformation with `ContentTypeId` among its user-defined properties; the
    first section (the built-in properties) keeps its bytes."""
    order, version, system, clsid, count = struct.unpack_from("<HHI16sI", stream, 0)
    if order != 0xFFFE or count not in (1, 2):
        raise ValueError("not a property set stream")
    sections: list[tuple[bytes, bytes]] = []
    for i in range(count):
        fmtid, offset = struct.unpack_from("<16sI", stream, 28 + 20 * i)
        length = struct.unpack_from("<I", stream, offset)[0]
        sections.append((fmtid, stream[offset : offset + length]))
    user = next((body for fmtid, body in sections if fmtid == USER_DEFINED_FMTID), None)
    new_user = _user_section(user, content_type_id)
    kept = [(f, b) for f, b in sections if f != USER_DEFINED_FMTID][:1]
    sections = [*kept, (USER_DEFINED_FMTID, new_user)]
    head = struct.pack("<HHI16sI", order, version, system, clsid, len(sections))
    offset = len(head) + 20 * len(sections)
    table, bodies = b"", b""
    for fmtid, body in sections:
        table += struct.pack("<16sI", fmtid, offset + len(bodies))
        bodies += body
    return head + table + bodies


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _user_section(section: bytes | None, content_type_id: str) -> bytes:
    """The user-defined section with `ContentTypeId` (VT_LPWSTR) added or replaced."""
    values: dict[int, bytes] = {}
    names: dict[int, str] = {}
    codepage = _CODEPAGE_UNICODE
    if section is not None:
        count = struct.unpack_from("<I", section, 4)[0]
        flat = struct.unpack_from(f"<{2 * count}I", section, 8)
        pairs = [(flat[i], flat[i + 1]) for i in range(0, 2 * count, 2)]
        ends = sorted({offset for _, offset in pairs} | {len(section)})
        for pid, offset in pairs:
            values[pid] = section[offset : next(end for end in ends if end > offset)]
        if 1 in values:
            codepage = struct.unpack_from("<H", values[1], 4)[0]
        if 0 in values:
            names = _read_dictionary(values.pop(0), codepage)
    ours = next((pid for pid, name in names.items() if name == "ContentTypeId"), None)
    if ours is None:
        ours = max([1, *values, *names]) + 1
        names[ours] = "ContentTypeId"
    text = (content_type_id + "\0").encode("utf-16-le")
    values[ours] = _pad4(struct.pack("<II", _VT_LPWSTR, len(text) // 2) + text)
    values.setdefault(1, struct.pack("<HHHH", _VT_I2, 0, codepage, 0))
    values[0] = _write_dictionary(names, codepage)
    ids = sorted(values)
    offset = 8 + 8 * len(ids)
    table, body = b"", b""
    for pid in ids:
        table += struct.pack("<II", pid, offset + len(body))
        body += values[pid]
    return struct.pack("<II", 8 + len(table) + len(body), len(ids)) + table + body


def _read_dictionary(raw: bytes, codepage: int) -> dict[int, str]:
    count = struct.unpack_from("<I", raw, 0)[0]
    at, names = 4, {}
    for _ in range(count):
        pid, length = struct.unpack_from("<II", raw, at)
        at += 8
        if codepage == _CODEPAGE_UNICODE:
            names[pid] = raw[at : at + 2 * length].decode("utf-16-le").rstrip("\0")
            at += 2 * length + (-(2 * length) % 4)
        else:
            names[pid] = raw[at : at + length].decode("latin-1").rstrip("\0")
            at += length
    return names


def _write_dictionary(names: dict[int, str], codepage: int) -> bytes:
    out = struct.pack("<I", len(names))
    for pid, name in sorted(names.items()):
        if codepage == _CODEPAGE_UNICODE:
            text = (name + "\0").encode("utf-16-le")
            out += struct.pack("<II", pid, len(text) // 2) + _pad4(text)
        else:
            text = (name + "\0").encode("latin-1", "replace")
            out += struct.pack("<II", pid, len(text)) + text
    return _pad4(out)
