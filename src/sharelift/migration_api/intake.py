"""A round's file made ready for a package: checked, given its ids, times and author.

`Intake.prepare` takes the `FileWork` the round submits and returns it as a `Packed` entry
(`runs.py`), or gives the file its outcome at once: its folder failed, it cannot be opened or
is no regular file, the target already holds the same bytes (adopted) or, under the `newer`
policy, a newer version. A file that replaces one on the target (listed there, or put there
by an earlier round, through Graph or a package) carries that file's own id; every file names
its folder by the folder's SharePoint id (asked once per folder). Authors come from the user
map (`read_user_map`), by the source file's owner.
"""

from __future__ import annotations

import csv
import os
import pwd
import stat
from datetime import UTC, datetime
from pathlib import Path

from sharelift.engine.mover import FileWork, RoundContext
from sharelift.engine.outcomes import mtime_ns
from sharelift.engine.reader import FragmentBuffer, hash_file, open_readonly
from sharelift.errors import ConfigError
from sharelift.graph.errors import GraphError
from sharelift.migration_api.jobs import MigrationApiError
from sharelift.migration_api.package import PackageTarget, PackageUser, file_id
from sharelift.migration_api.runs import REFUSED, Packed
from sharelift.migration_api.site import FolderIds
from sharelift.plan import Action, target_is_newer
from sharelift.state import PackageFileRecord


def read_user_map(path: Path) -> dict[str, PackageUser]:
    """A user-mapping CSV (`source,upn`: a source owner's login name, and the UPN that authors
    their files; `*` for everyone else), as users by source name. ConfigError names the row."""
    users: dict[str, PackageUser] = {}
    by_upn: dict[str, PackageUser] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or row[0].startswith("#") or row[:2] == ["source", "upn"]:
                    continue
                if len(row) != 2 or "@" not in row[1]:
                    raise ConfigError(f"{path}, row {number}: expected source,upn")
                upn = row[1].strip().lower()
                user = by_upn.setdefault(upn, PackageUser(len(by_upn) + 1, upn))
                users[row[0].strip()] = user
    except OSError as exc:
        raise ConfigError(f"cannot read the user map {path}: {exc.strerror}") from None
    return users


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class Intake:
    """Prepares a round's files for `target`'s packages (see the module docstring). `root` is
    the library root's (driveItem id, SharePoint id); `users` the user map."""

    def __init__(
        self,
        context: RoundContext,
        target: PackageTarget,
        root: tuple[str, str],
        users: dict[str, PackageUser],
    ) -> None:
        self.context = context
        self.target = target
        self._folders = FolderIds(context.drive)
        self._folders.remember(*root)
        self._users = users

    async def _known_id(self, item_id: str, fallback: str) -> str:
        """The SharePoint id of the file an earlier round put at the target as `item_id` (a
        changed file replaces it, so the package must name it by its id); `fallback` when it
        is gone from there."""
        try:
            return await self._folders.of(item_id)
        except GraphError as exc:
            if exc.status == 404:
                return fallback
            raise

    async def prepare(self, work: FileWork) -> Packed | None:
        """The file as a package will carry it, or None when it got its outcome already (its
        folder failed, it cannot be read, the target holds it or is newer)."""
        outcomes, plan, target = self.context.outcomes, work.plan, self.target
        folder_item = await work.folder.ready
        if folder_item is None:
            outcomes.failed(work, "PARENT_NOT_MIGRATED", "its folder could not be created")
            return None
        try:
            fd = open_readonly(work.source)
        except OSError as exc:
            outcomes.failed(work, "READ_ERROR", f"cannot open: {exc.strerror}")
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                outcomes.failed(work, "SPECIAL_FILE", "not a regular file")
                return None
            library_path = "/".join(
                p for p in (self.context.job.folder_path or "", plan.target_relpath or "") if p
            )
            fid = file_id(target.list_id, library_path)
            remote = plan.remote
            if plan.action is Action.ADOPT_IF_SAME and remote is not None:
                digest = await hash_file(fd, st.st_size, FragmentBuffer(1024 * 1024))
                if remote.size == st.st_size and remote.quick_xor == digest:
                    outcomes.adopted(work, remote, st.st_size, st.st_mtime)
                    return None
                policy = self.context.config.policy
                if policy == "newer" and target_is_newer(remote, plan.item):
                    outcomes.skipped(work, "TARGET_NEWER", "the target has a newer version")
                    return None
            if remote is not None:
                # The package replaces the file there: it must carry that file's own id (one
                # Graph placed, or an earlier package under another id, has its own).
                fid = await self._folders.of(remote.id)
            elif plan.state is not None and plan.state.item_id:
                fid = await self._known_id(plan.state.item_id, fid)
            folder_unique = await self._folders.of(folder_item)
        except OSError as exc:
            outcomes.failed(work, "READ_ERROR", f"read failed: {exc.strerror or exc}")
            return None
        except (GraphError, MigrationApiError) as exc:
            outcomes.failed(work, getattr(exc, "code", None) or REFUSED, str(exc))
            return None
        finally:
            os.close(fd)
        outcomes.started(work)
        created = st.st_mtime if plan.item.birthtime is None else plan.item.birthtime
        author = self._users.get(_owner(st.st_uid)) or self._users.get("*")
        record = PackageFileRecord(
            package_row=0,
            item_row=work.row,
            file_id=fid,
            blob=f"{fid}.dat",
            size=st.st_size,
            mtime_ns=mtime_ns(st.st_mtime),
            quick_xor=None,
            md5=None,
            stored=False,
        )
        return Packed(
            work=work,
            record=record,
            url=f"{target.list_url}/{library_path}",
            folder_item=folder_item,
            folder_unique=folder_unique,
            created=datetime.fromtimestamp(min(created, st.st_mtime), UTC),
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
            mtime=st.st_mtime,
            author=author,
        )
