"""CPU per stage of a re-run's planning, in this process: where the time goes per file.

Usage:
    .venv/bin/python bench/plan_cost.py SOURCE STATE.db [--repeat 2]

SOURCE is a tree a migration completed (bench/data/rerun-N), STATE.db that migration's state
store (bench/results/rerun/rerun.db after `bench/run.py rerun`); the store is copied to a
temporary file first, the original is not touched. It runs the engine's own code for a re-run
of unchanged files: the walk, then `Dispatcher.plan` for every listing (the planning pipeline
through the naming rules, one state query per folder, the plan, the progress tally and the
"seen" marks), as a round does, with no Graph request (a file or folder to send would stop the
bench: its stand-in drive, mover and folder creator refuse all work); then the round's
reports are computed. It prints the CPU seconds of each stage and microseconds per item.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections import defaultdict
from typing import Any, NoReturn

from sharelift.engine import EngineConfig
from sharelift.engine.dispatch import Dispatcher
from sharelift.engine.mover import RoundContext
from sharelift.engine.outcomes import Outcomes
from sharelift.progress import Tally
from sharelift.report import round_items, summarize
from sharelift.source.rules import TargetPrefix
from sharelift.source.walk import ScanOptions, walk_listings
from sharelift.state import RoundStatus, open_state


class Refuse:
    """Stands in for the drive, the mover and the folder creator: a re-run of unchanged
    files needs none of them."""

    def __getattr__(self, name: str) -> NoReturn:
        raise SystemExit(f"the re-run wanted {name}: not a re-run of unchanged files")


async def dispatch_all(dispatcher: Dispatcher, listings: list[Any]) -> float:
    clock = time.process_time
    spent = 0.0
    dispatcher.start(first_contact=False)
    for listing in listings:
        t = clock()
        await dispatcher.plan(listing)
        spent += clock() - t
    return spent


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
        t = clock()
        listings = list(walk_listings(source, ScanOptions()))
        cost["walk"] += clock() - t
        refuse: Any = Refuse()
        context = RoundContext(
            drive=refuse,
            store=store,
            job=job,
            round_id=rnd.id,
            root_id="ROOT",
            config=EngineConfig(),
            outcomes=Outcomes(store, tally, job.id, rnd.id),
            stopping=asyncio.Event(),
        )
        dispatcher = Dispatcher(
            context,
            source=source,
            options=ScanOptions(),
            prefix=TargetPrefix("/personal/bench/Documents/rerun", at_library_root=False),
            folders=refuse,
            mover=refuse,
        )
        cost["plan (names, state, plan, tally, marks)"] = asyncio.run(
            dispatch_all(dispatcher, listings)
        )
        t = clock()
        store.finish_round(rnd.id, RoundStatus.COMPLETED)
        cost["plan (names, state, plan, tally, marks)"] += clock() - t
        done = store.round(rnd.id)
        assert done is not None
        t = clock()
        changed = sum(1 for _ in round_items(store, job, done))
        summary = summarize(store, job, done)
        cost["reports"] += clock() - t
        assert changed == 0 and summary.unchanged_items == summary.total_scanned_items, summary
        assert tally.unchanged == tally.files_total, "not a re-run of unchanged files"
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
