"""Telling a library's rewrite of an Office file from corruption.

A SharePoint document library rewrites the Office files committed to it (their metadata:
`sharelift.office`), so Graph's quickXorHash of such a file differs from the hash of the bytes
sent although the upload session took every one of them. Such a file is not sent again blindly:

    an Office Open XML file (docx, xlsx, pptx, ...)
        prove_office_files on   the stored file is downloaded (a piece at a time, into a
                                private temporary file) and proved part by part against the
                                source: done, verified by PARTS; a file that fails the proof
                                is a hash mismatch, sent again, then failed, as before
        prove_office_files off  in a library: done, verified by SIZE (the upload took every
                                byte; the content was not compared), noted NOT_VERIFIED
    a legacy binary Office file (doc, xls, ppt, ...), in a library
                                done, verified by SIZE, noted NOT_VERIFIED: the library writes
                                its properties into the file's property-set streams and no
                                package proof applies (see docs/migrate.md)
    anything else, or any Office file outside a library (a OneDrive keeps bytes as sent)
                                a hash mismatch, as before

The same proof lets a file already at the target (a crash after the commit, before the state
store heard of it) be adopted without sending it again.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass

from sharelift.engine.mover import RoundContext
from sharelift.graph.errors import GraphError
from sharelift.office import PackageMismatch, office_kind, prove_package
from sharelift.state import VerifiedBy

LIBRARY = "documentLibrary"


@dataclass(frozen=True)
class Verdict:
    """How a file whose stored hash differs is settled: `verified_by` when it may be recorded
    done, else None and `reason` says why it is a mismatch after all."""

    verified_by: VerifiedBy | None
    reason: str = ""


class EnrichedFiles:
    """Judges the files whose stored hash differs from the hash of the bytes read."""

    def __init__(self, context: RoundContext) -> None:
        self.context = context

    def provable(self, name: str) -> bool:
        """True when a file of this name could be proved part by part (and so adopted from
        the target without sending it)."""
        return self.context.config.prove_office_files and office_kind(name) == "ooxml"

    async def judge(self, name: str, item_id: str, fd: int) -> Verdict:
        """The verdict on the file `name`, read from `fd`, whose stored version `item_id` has
        another hash than the bytes read (and, after an upload, took every byte)."""
        kind = office_kind(name)
        in_library = self.context.drive_type == LIBRARY
        if kind == "ooxml" and self.context.config.prove_office_files:
            return await self.prove(item_id, fd)
        if kind == "ooxml" and in_library:
            return Verdict(VerifiedBy.SIZE, "the proof is off (prove_office_files)")
        if kind == "legacy" and in_library:
            return Verdict(
                VerifiedBy.SIZE, "a binary Office file's content cannot be proved part by part"
            )
        return Verdict(None)

    async def prove(self, item_id: str, fd: int) -> Verdict:
        """Download the stored version of `item_id` and prove it against the source."""
        with tempfile.TemporaryFile(prefix="sharelift-proof-") as stored:
            try:
                await self.context.drive.download(item_id, stored)
            except GraphError as exc:
                return Verdict(None, f"the stored file could not be downloaded: {exc}")
            with os.fdopen(os.dup(fd), "rb") as source:
                try:
                    await asyncio.to_thread(prove_package, source, stored)
                except PackageMismatch as exc:
                    return Verdict(None, f"not a library's rewrite: {exc}")
        return Verdict(VerifiedBy.PARTS)
