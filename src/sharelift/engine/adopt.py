"""Whether the file already at the target is the file at the source, so that it is recorded,
not sent again (the plan's `ADOPT_IF_SAME`: a re-run after a crash between a commit and its
record, or content that came by other means).

It is when it holds the same bytes (the quickXorHash of the source equals the target's), or a
library's rewrite of them (an Office file proved part by part, `engine/enriched.py`). Its times
are compared too: when they are not the source's and the policy would replace the file
(overwrite; newer, the target being older), it is given the source's times, as a replacement
would (an empty file a killed run put there without its times is the usual case); a policy that
keeps what is there (rename; newer, the target being newer) leaves them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sharelift.engine.enriched import EnrichedFiles
from sharelift.engine.graph_session import file_times
from sharelift.engine.mover import RoundContext
from sharelift.engine.reader import FragmentBuffer, hash_file
from sharelift.graph.types import FileSystemInfo
from sharelift.plan import TIME_TOLERANCE_S, Planned, RemoteItem, target_is_newer
from sharelift.state import VerifiedBy


@dataclass(frozen=True)
class SameFile:
    """The file at the target is the source's: as it is now (its times set when they were
    set), the hash of the source's bytes, and the check that proved it."""

    remote: RemoteItem
    digest: str
    verified_by: VerifiedBy


async def same_file(
    context: RoundContext,
    enriched: EnrichedFiles,
    plan: Planned,
    fd: int,
    st: os.stat_result,
    remote: RemoteItem,
    buffer: FragmentBuffer,
) -> SameFile | None:
    """The proof that `remote` is the file open as `fd` (see the module docstring), or None."""
    if remote.quick_xor is None:
        return None
    digest = await hash_file(fd, st.st_size, buffer)
    verified_by = VerifiedBy.HASH
    if remote.size != st.st_size or remote.quick_xor != digest:
        if not enriched.provable((plan.target_relpath or "").rsplit("/", 1)[-1]):
            return None
        verdict = await enriched.prove(remote.id, fd)
        if verdict.verified_by is None:
            return None
        verified_by = verdict.verified_by
    policy = context.config.policy
    replaceable = policy == "overwrite" or (
        policy == "newer" and not target_is_newer(remote, plan.item)
    )
    if replaceable and not _same_time(remote, st.st_mtime):
        # The policy would replace it: these bytes with the source's times is what a
        # replacement would make, without sending them.
        created, modified = file_times(st.st_mtime, st.st_ctime, plan.item.birthtime)
        patched = await context.drive.update_item(
            remote.id, file_system_info=FileSystemInfo(created, modified)
        )
        remote = replace(remote, etag=patched.etag, modified=modified)
    return SameFile(remote, digest, verified_by)


def _same_time(remote: RemoteItem, mtime: float) -> bool:
    """The target shows the source's modification time (Graph keeps it to the second)."""
    if remote.modified is None:
        return True
    source = datetime.fromtimestamp(mtime, UTC)
    return abs((remote.modified - source).total_seconds()) < TIME_TOLERANCE_S
