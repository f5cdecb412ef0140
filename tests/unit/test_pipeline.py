"""The planning pipeline that scan, dry run and the engine share: listing -> filters -> names
-> plan."""

from __future__ import annotations

import os
from pathlib import Path

from sharelift.plan import Action
from sharelift.scanner import scan
from sharelift.source.pipeline import plan_tree
from sharelift.source.rules import RenamePolicy, Status
from sharelift.source.walk import ScanOptions


def write(root: Path, *paths: str) -> None:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def plans(root: Path, options: ScanOptions) -> dict[str, tuple[Action, str | None]]:
    return {
        plan.item.relpath: (plan.action, plan.target_relpath)
        for planned in plan_tree(root, options)
        for plan in planned.plans
    }


def targets(root: Path, options: ScanOptions) -> dict[str, str | None]:
    return {
        e.relpath: "/".join(e.target_parts) if e.target_parts else None for e in scan(root, options)
    }


def test_a_filtered_item_takes_no_name_from_its_sibling(tmp_path: Path) -> None:
    """--exclude A.txt beside a.txt: a.txt keeps its name (it used to become "a (1).txt" in a
    migration, while scan said "a.txt")."""
    write(tmp_path, "A.txt", "a.txt", "d/B.txt", "d/b.txt")
    options = ScanOptions(exclude=("A.txt", "d/B.txt"))
    planned = plans(tmp_path, options)
    assert planned["A.txt"] == (Action.SKIP_FILTERED, None)
    assert planned["a.txt"] == (Action.UPLOAD, "a.txt")
    assert planned["d/b.txt"] == (Action.UPLOAD, "d/b.txt")
    assert targets(tmp_path, options) == {
        "A.txt": None,
        "a.txt": "a.txt",
        "d": "d",
        "d/B.txt": None,
        "d/b.txt": "d/b.txt",
    }


def test_an_item_the_walk_cannot_take_takes_no_name(tmp_path: Path) -> None:
    write(tmp_path, "report.txt")
    os.symlink("nowhere", tmp_path / "REPORT.txt")  # not followed: not migrated
    planned = plans(tmp_path, ScanOptions())
    assert planned["REPORT.txt"][0] is Action.SKIP_SOURCE
    assert planned["report.txt"] == (Action.UPLOAD, "report.txt")
    assert targets(tmp_path, ScanOptions())["report.txt"] == "report.txt"


def test_what_is_inside_a_folder_that_is_not_migrated_is_planned_too(tmp_path: Path) -> None:
    write(tmp_path, "CON/inside.txt", "CON/a:b.txt", "CON/deeper/x.txt")
    options = ScanOptions(rename=RenamePolicy.parse("off"))
    planned = plans(tmp_path, options)
    assert planned["CON"][0] is Action.SKIP_RULE
    assert planned["CON/inside.txt"] == (Action.SKIP_PARENT, None)
    assert planned["CON/a:b.txt"] == (Action.SKIP_RULE, None)  # its own rule first
    assert planned["CON/deeper/x.txt"] == (Action.SKIP_PARENT, None)
    by = {e.relpath: e for e in scan(tmp_path, options)}
    assert by["CON/inside.txt"].status is Status.SKIPPED
    assert by["CON/deeper/x.txt"].target_parts is None


def test_scan_and_dry_run_name_every_item_alike(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Case/x.txt",
        "case/x.txt",
        "case/X.TXT",
        "a:b.txt",
        "a_b.txt",
        "skip.tmp",
        "SKIP.txt",
        "skip.txt",
    )
    options = ScanOptions(skip_extensions=frozenset({"tmp"}), exclude=("SKIP.txt",))
    scanned = targets(tmp_path, options)
    planned = plans(tmp_path, options)
    assert set(scanned) == set(planned)
    for path, (action, target) in planned.items():
        assert scanned[path] == (target if action.migrates else None), path
