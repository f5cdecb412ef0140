"""The folders a unit has no budget for, recorded as units of their own.

`UnitCarver` is the `Carver` (engine/parts.py) of a unit: once the unit has met
`JobSpec.unit_files` files or `unit_bytes` bytes in its listings, every folder of its walk
whose turn comes is left to a unit of its own, recorded (`tree`, keyed by the round and the
folder's path, so that an owner that takes the unit over finds it again) once its parent's
planning placed it, and handed to the broker. Folders an earlier owner of the unit carved are
always left out. Only the owner of the unit's live lease can record a unit: a worker whose
lease lapsed carves nothing (`StateStore.add_unit(owner=...)`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from sharelift.cluster.specs import place_to_json
from sharelift.engine.parts import Budget, FolderPlace
from sharelift.source.walk import Listing
from sharelift.state import NewUnit, StateStore, UnitRecord

log = logging.getLogger("sharelift.cluster")

Publisher = Callable[[int, str], None]
"""Hands a unit (id, queue) to the broker; may block; raises when the broker is away."""


def tree_key(round_id: int, path: bytes) -> str:
    """The identity of a round's sub-tree unit."""
    return f"round-{round_id}:tree:{path.hex()}"


class UnitCarver:
    """The carver of one unit (see the module docstring)."""

    def __init__(
        self,
        store: StateStore,
        unit: UnitRecord,
        owner: str,
        round_id: int,
        job_id: int,
        spec: dict[str, Any],
        publish: Publisher,
        *,
        files: int,
        size: int,
    ) -> None:
        """`spec` holds what every unit of the round carries (the job, its target)."""
        self.store = store
        self.unit = unit
        self.owner = owner
        self.round_id = round_id
        self.job_id = job_id
        self.spec = spec
        self.publish = publish
        carved = {
            tuple(os.fsdecode(u.path).split("/")) for u in store.units(parent=unit.id) if u.path
        }
        self.budget = Budget(files, size, carved)
        self._left_out: list[tuple[str, ...]] = []
        self.carved = 0

    def prune(self, parts: tuple[str, ...]) -> bool:
        if self.budget.prune(parts):
            self._left_out.append(parts)
            return True
        return False

    def pruned(self) -> list[tuple[str, ...]]:
        out, self._left_out = self._left_out, []
        return out

    def walked(self, listing: Listing) -> None:
        self.budget.walked(listing)

    async def carve(self, parts: tuple[str, ...], place: FolderPlace, root_id: str) -> None:
        path = os.fsencode("/".join(parts))
        spec = {**self.spec, "root_id": root_id, "folder": place_to_json(place)}
        new = NewUnit(
            key=tree_key(self.round_id, path),
            run=self.unit.run,
            kind="tree",
            queue=self.unit.queue,
            spec=spec,
            path=path,
            job_id=self.job_id,
            round_id=self.round_id,
            parent=self.unit.id,
        )
        made = self.store.add_unit(new, owner=self.owner)
        if made is None:
            log.warning("unit %d: lease lost; %s is not carved", self.unit.id, "/".join(parts))
            return
        unit_id, created = made
        if created:
            self.carved += 1
            try:
                await asyncio.to_thread(self.publish, unit_id, self.unit.queue)
            except Exception as exc:  # the broker is away: any worker hands it over later
                log.warning("unit %d: not handed to the broker now (%s)", unit_id, exc)
                return
            self.store.mark_published([unit_id])
