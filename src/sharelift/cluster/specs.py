"""What a unit carries (`UnitRecord.spec`, JSON in the state store): never a secret, since every
worker reads it; the workers sign in with their own credentials.

    job     {"job": JobSpec}                         the job as the coordinator was given it
    tree    {"job", "target", "root_id", "folder"}
                                                     a carved sub-tree: where it goes
    finish  {"job", "target", "root_id"}             a round to close
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sharelift.config import OPTIONS, keyword_options
from sharelift.credential import Credential
from sharelift.engine.parts import FolderPlace
from sharelift.errors import ConfigError
from sharelift.job import MigrateRequest
from sharelift.source.pipeline import Parent
from sharelift.target import ResolvedTarget, TargetSpec

LOCAL_OPTIONS = frozenset({"state", "report", "dry_run"})
"""Options of `migrate` that belong to the machine that runs it, not to the job. Secret
options never travel either: a worker has its own."""


def to_json(value: Any) -> Any:
    """An option's value as JSON that its option's `load` reads back."""
    if isinstance(value, tuple | list):
        return list(value)
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # a rename policy, a path


def _load(values: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return {name: OPTIONS[name].load(value) for name, value in values.items()}
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"a unit of work carries an option this worker cannot use: {exc}"
        ) from None


@dataclass(frozen=True)
class JobSpec:
    """One job, as `migrate --broker` was given it (a row of a job file, or SOURCE TARGET)."""

    source: str
    """The source folder, as the workers see it (the same mount on every machine)."""
    target: TargetSpec
    name: str
    """How reports and `status` name the job (FILE#ROW for a job file's row)."""
    options: dict[str, Any] = field(default_factory=dict)
    """The `migrate` options given (sharelift.config names), as JSON."""
    row_options: dict[str, Any] = field(default_factory=dict)
    """A job-file row's own scan options (its task settings), as JSON."""
    unit_files: int = 10_000
    unit_bytes: int = 20 << 30

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": dataclasses.asdict(self.target),
            "name": self.name,
            "options": self.options,
            "row_options": self.row_options,
            "unit_files": self.unit_files,
            "unit_bytes": self.unit_bytes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        return cls(
            source=data["source"],
            target=TargetSpec(**data["target"]),
            name=data["name"],
            options=dict(data["options"]),
            row_options=dict(data["row_options"]),
            unit_files=int(data["unit_files"]),
            unit_bytes=int(data["unit_bytes"]),
        )

    @classmethod
    def make(
        cls,
        source: str,
        target: TargetSpec,
        name: str,
        options: Mapping[str, Any],
        row_options: Mapping[str, Any] | None = None,
        *,
        unit_files: int,
        unit_bytes: int,
    ) -> JobSpec:
        """A job from checked option values (`migrate`'s, and a row's scan options)."""
        return cls(
            os.path.abspath(source),
            target,
            name,
            {
                k: to_json(v)
                for k, v in options.items()
                if k not in LOCAL_OPTIONS and not OPTIONS[k].secret
            },
            {k: to_json(v) for k, v in (row_options or {}).items()},
            unit_files,
            unit_bytes,
        )

    def request(self, credential: Credential) -> MigrateRequest:
        """The engine room's request for this job on this worker (its own endpoints)."""
        from sharelift.api import migrate_request

        values = keyword_options("migrate", _load(self.options))
        request = migrate_request(self.source, self.target, credential, values)
        request = replace(request, options=replace(request.options, **_load(self.row_options)))
        return replace(request, job_name=self.name)


def target_to_json(target: ResolvedTarget) -> dict[str, Any]:
    return dataclasses.asdict(target)


def target_from_json(data: Mapping[str, Any]) -> ResolvedTarget:
    return ResolvedTarget(**data)


def place_to_json(place: FolderPlace) -> dict[str, Any]:
    return {
        "target": place.parent.target,
        "length": place.parent.length,
        "id": place.folder_id,
        "lost": place.lost,
        "listed": place.listed,
    }


def place_from_json(data: Mapping[str, Any]) -> FolderPlace:
    parent = Parent(data["target"], int(data["length"]))
    return FolderPlace(parent, data["id"], bool(data["lost"]), bool(data["listed"]))
