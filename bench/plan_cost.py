"""CPU per stage of a re-run's planning, in this process: where the time goes per file.

Usage:
    .venv/bin/python bench/plan_cost.py SOURCE STATE.db [--repeat 2]

SOURCE is a tree a migration completed (bench/data/rerun-N), STATE.db that migration's state
store (bench/results/rerun/rerun.db after `bench/run.py rerun`); the store is copied to a
temporary file first, the original is not touched. For every folder it runs what the engine
runs for a folder whose files are all unchanged, in the engine's order: the walk, the naming
rules, the state reads (one query per folder), the plan, the progress tally and the "seen"
marks; then the round's reports are computed. No Graph request is made. It prints the CPU
seconds of each stage and microseconds per item. Run it with PYTHONPATH set to another source
tree to measure another commit (the marks fall back to per-item marks where the store has no
per-folder ones).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import defaultdict

from sharelift.plan import Action, plan_folder
from sharelift.progress import Outcome, Tally
from sharelift.report import round_items, summarize
from sharelift.source.rules import RenamePolicy, decide_siblings
from sharelift.source.walk import ScanOptions, walk_listings
from sharelift.state import open_state


def measure(source: str, state: str) -> tuple[dict[str, float], int]:
    cost: defaultdict[str, float] = defaultdict(float)
    clock = time.process_time
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "state.db")
        shutil.copy(state, db)
        store = open_state(db)
        job = store.jobs()[0]
        rnd = store.start_round(job.id)
        tally = Tally()
        mark_folder = getattr(store, "mark_folder_seen", None)
        t = clock()
        listings = list(walk_listings(source, ScanOptions()))
        cost["walk"] += clock() - t
        targets: dict[tuple[str, ...], str] = {(): ""}
        for listing in listings:
            parent_target = targets.pop(listing.parts)
            parent = os.fsencode("/".join(listing.parts))
            t = clock()
            decisions = decide_siblings(
                listing.children, RenamePolicy(), parent_path_length=60, at_library_root=False
            )
            cost["rules"] += clock() - t
            t = clock()
            known = store.children(job.id, parent)
            cost["state reads"] += clock() - t
            t = clock()
            plans = plan_folder(listing, decisions, parent_target, known, None)
            cost["plan"] += clock() - t
            t = clock()
            seen: list[int] = []
            for plan in plans:
                item = plan.item
                if plan.action is Action.SKIP_UNCHANGED:
                    assert plan.state is not None
                    seen.append(plan.state.id)
                    tally.finished(item.relpath, Outcome.UNCHANGED, item.size, "unchanged")
                elif plan.action is Action.FOLDER_KNOWN:
                    assert plan.state is not None and plan.target_relpath is not None
                    targets[item.parts] = plan.target_relpath
                    seen.append(plan.state.id)
                else:
                    raise SystemExit(
                        f"{item.relpath}: {plan.action}, not a re-run of unchanged files"
                    )
            cost["engine loop"] += clock() - t
            t = clock()
            if mark_folder is not None and len(seen) == len(known):
                mark_folder(job.id, parent, rnd.id)
            else:
                store.mark_seen(seen, rnd.id)
            cost["seen marks"] += clock() - t
        t = clock()
        store.finish_round(rnd.id, "completed")
        cost["seen marks"] += clock() - t
        done = store.round(rnd.id)
        assert done is not None
        t = clock()
        changed = sum(1 for _ in round_items(store, job, done))
        summary = summarize(store, job, done)
        cost["reports"] += clock() - t
        assert changed == 0 and summary.skipped_items == summary.total_scanned_items, summary
        store.close()
    return cost, sum(len(listing.children) for listing in listings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("state")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    for _ in range(args.repeat):
        cost, items = measure(args.source, args.state)
        total = sum(cost.values())
        print(
            " | ".join(f"{k} {v * 1e6 / items:.1f}" for k, v in cost.items())
            + f" | total {total * 1e6 / items:.1f} us per item ({items} items, {total:.2f} s CPU)"
        )


if __name__ == "__main__":
    main()
