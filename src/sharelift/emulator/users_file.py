"""The users file: the tenant's users as a CSV or JSON list, read at the emulator's start."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sharelift.emulator.store import UserSpec
from sharelift.errors import EmulatorError

_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n", ""}


def _flag(value: object, where: str, column: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False if text else default
    raise EmulatorError(f"{where}: column {column!r} must be true or false, not {value!r}")


def load_users(path: Path) -> list[UserSpec]:
    """Users from a CSV (header upn,display_name,licensed,onedrive) or a JSON list of objects
    with the same keys. `upn` is required; the others default to the UPN, true and true.

    Raises EmulatorError naming the file (and row) on any problem.
    """
    try:
        text = path.read_text("utf-8-sig")
    except OSError as exc:
        raise EmulatorError(f"{path}: cannot read users file ({exc.strerror})") from exc
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise EmulatorError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise EmulatorError(f"{path}: expected a JSON list of user objects")
        rows = [(f"{path}: user #{i + 1}", r) for i, r in enumerate(data)]
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "upn" not in [f.strip() for f in reader.fieldnames]:
            raise EmulatorError(f"{path}: the CSV needs a header with an 'upn' column")
        rows = [
            (f"{path}: row {i + 2}", {(k or "").strip(): v for k, v in r.items()})
            for i, r in enumerate(reader)
        ]
    users: list[UserSpec] = []
    for where, row in rows:
        upn = str(row.get("upn") or "").strip()
        if not upn:
            raise EmulatorError(f"{where}: 'upn' is empty")
        users.append(
            UserSpec(
                upn=upn,
                display_name=str(row.get("display_name") or upn.split("@")[0]).strip(),
                licensed=_flag(row.get("licensed"), where, "licensed", True),
                onedrive=_flag(row.get("onedrive"), where, "onedrive", True),
            )
        )
    return users
