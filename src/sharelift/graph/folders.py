"""Creating folders in a drive: one by one, or many in JSON `$batch` requests.

`DriveFolders` is the folder part of `DriveClient` (`graph/drive.py`).
https://learn.microsoft.com/graph/api/driveitem-post-children
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sharelift.graph.batch import MAX_BATCH, BatchRequest
from sharelift.graph.errors import Conflict, FailedDependency, GraphError
from sharelift.graph.paths import ConflictBehavior, DriveBase, encode_path, encode_segment
from sharelift.graph.transport import json_body
from sharelift.graph.types import DriveItem


class DriveFolders(DriveBase):
    """Folder creation on one drive."""

    async def get_item_by_path(self, path: str, *, under: str | None = None) -> DriveItem:
        """An item by path from the root, or from folder `under`. Raises NotFound."""
        return DriveItem.from_json(await self.client.get_json(self.path_url(path, under=under)))

    def folder_request(
        self, request_id: str, path: str, *, under: str, conflict: ConflictBehavior = "fail"
    ) -> BatchRequest:
        """A $batch request creating folder `path` (relative to folder `under`)."""
        parent, _, name = path.strip("/").rpartition("/")
        return BatchRequest(
            id=request_id,
            method="POST",
            url=self.path_url(parent, under=under, action="children"),
            body=_folder_body(name, conflict),
            retry_safe=conflict != "rename",
        )

    async def create_folder(
        self,
        parent_id: str,
        name: str,
        *,
        conflict: ConflictBehavior = "fail",
        existing_ok: bool = False,
    ) -> DriveItem:
        """Create folder `name` in `parent_id`.

        With conflict "fail" and `existing_ok`, an existing folder of that name is returned
        instead of raising NameAlreadyExists; an existing *file* still raises. "fail" and
        "replace" are retried after a lost response (a repeat then meets the folder it made);
        "rename" is not, as a repeat would make "name 1".
        """
        encode_segment(name)
        try:
            response = await self.client.request(
                "POST",
                f"{self.item_url(parent_id)}/children",
                json=_folder_body(name, conflict),
                retry_safe=conflict != "rename",
            )
        except Conflict:
            if conflict != "fail" or not existing_ok:
                raise
            existing = await self.get_item_by_path(name, under=parent_id)
            if not existing.is_folder:
                raise
            return existing
        return DriveItem.from_json(json_body(response))

    async def create_folders(
        self,
        paths: Sequence[str],
        *,
        under: str,
        conflict: ConflictBehavior = "fail",
        existing_ok: bool = True,
    ) -> list[DriveItem | GraphError]:
        """Create many folders (paths relative to folder `under`) in as few $batch calls as fit.

        A path's parent must be listed before it or exist already. Folders whose parents are
        ready go out 20 to a batch; a lone ready folder with descendants goes out as a serial
        `dependsOn` chain with them. With conflict "fail" and `existing_ok`, existing folders
        are fetched and returned as if created. Returns, in the order of `paths`, each folder
        or the error that stopped it (FailedDependency when its parent failed); never raises
        for one folder's failure.
        """
        order = [p.strip("/") for p in paths]
        position = {p: i for i, p in enumerate(order)}
        if len(position) != len(order):
            raise ValueError("create_folders got the same path twice")
        for i, path in enumerate(order):
            if not encode_path(path):
                raise ValueError("create_folders got the root as a path")
            parent = _parent(path)
            if parent in position and position[parent] > i:
                raise ValueError(f"{path!r} is listed before its parent")
        results: dict[str, DriveItem | GraphError] = {}
        pending = list(order)
        dependency_failures: dict[str, int] = {}
        while pending:
            chunk, serial = _next_chunk(pending)
            requests = [
                self.folder_request(str(n), path, under=under, conflict=conflict)
                for n, path in enumerate(chunk, 1)
            ]
            if serial:
                requests = [
                    _depending(r, requests[n - 1].id) if n else r for n, r in enumerate(requests)
                ]
            answers = await self.client.batch(requests)
            existing: list[tuple[str, GraphError]] = []
            for path, request, answer in zip(chunk, requests, answers, strict=True):
                if answer.ok:
                    results[path] = DriveItem.from_json(answer.body)
                elif answer.status == 409 and conflict == "fail" and existing_ok:
                    existing.append((path, answer.error(request)))
                elif answer.status == 424 and dependency_failures.get(path, 0) == 0:
                    dependency_failures[path] = 1  # its chain was cut: try it again on its own
                else:
                    results[path] = answer.error(request)
            if existing:
                await self._fetch_existing(existing, under, results)
            pending = _settle(pending, results)
        return [results[p] for p in order]

    async def _fetch_existing(
        self,
        conflicts: list[tuple[str, GraphError]],
        under: str,
        results: dict[str, DriveItem | GraphError],
    ) -> None:
        for start in range(0, len(conflicts), MAX_BATCH):
            part = conflicts[start : start + MAX_BATCH]
            requests = [
                BatchRequest(id=str(n), method="GET", url=self.path_url(path, under=under))
                for n, (path, _) in enumerate(part, 1)
            ]
            answers = await self.client.batch(requests)
            for (path, conflict_error), request, answer in zip(
                part, requests, answers, strict=True
            ):
                if not answer.ok:
                    results[path] = answer.error(request)
                    continue
                item = DriveItem.from_json(answer.body)
                results[path] = item if item.is_folder else conflict_error


def _folder_body(name: str, conflict: ConflictBehavior) -> dict[str, Any]:
    return {"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": conflict}


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _depending(request: BatchRequest, on: str) -> BatchRequest:
    return BatchRequest(
        id=request.id,
        method=request.method,
        url=request.url,
        body=request.body,
        headers=request.headers,
        depends_on=(on,),
        retry_safe=request.retry_safe,
    )


def _next_chunk(pending: list[str]) -> tuple[list[str], bool]:
    """The folders to send next, and whether they form a serial dependsOn chain.

    Ready folders (parent not pending) go out in parallel, 20 at most. A single ready folder
    instead leads a chain: each next member is the first pending child of the previous one.
    """
    waiting = set(pending)
    ready = [p for p in pending if _parent(p) not in waiting]
    if len(ready) > 1:
        return ready[:MAX_BATCH], False
    chain = [ready[0]]
    for path in pending:
        if len(chain) == MAX_BATCH:
            break
        if _parent(path) == chain[-1]:
            chain.append(path)
    return chain, len(chain) > 1


def _settle(pending: list[str], results: dict[str, DriveItem | GraphError]) -> list[str]:
    """Drop settled folders; fail the descendants of failed ones (parents come first)."""
    still: list[str] = []
    for path in pending:
        if path in results:
            continue
        parent = results.get(_parent(path))
        if isinstance(parent, GraphError):
            results[path] = FailedDependency(
                f"parent folder failed: {parent.message}", status=424, code="failedDependency"
            )
            continue
        still.append(path)
    return still
