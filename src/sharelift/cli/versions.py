"""`sharelift versions prune TARGET [--dry-run]`: remove the versions older than the current one
of every file under a target folder (`sharelift.prune`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from sharelift.cli.options import Parser, add_options
from sharelift.errors import EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    import asyncio

    from sharelift.prune import PruneResult


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "versions",
        help="the versions of migrated files at the target",
        description="Manage the versions OneDrive and SharePoint keep of every file (each "
        "counts against the site's quota).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True
    prune = actions.add_parser(
        "prune",
        help="remove the versions older than the current one under a target folder",
        description="Remove, under the folder TARGET, every version of every file older than "
        "its current one: paced like a migration, resumable (a stopped run goes on where it "
        "was), and with --dry-run only counted.",
    )
    prune.add_argument("target", metavar="TARGET", help="a folder, as `sharelift migrate` takes")
    add_options(prune, "versions")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from sharelift.cli.connect import connect
    from sharelift.cli.signals import run_until_signalled
    from sharelift.graph.client import GraphClient
    from sharelift.graph.pacer import Pacer
    from sharelift.job import default_state_path
    from sharelift.prune import prune_target
    from sharelift.state import open_state
    from sharelift.target import parse_target

    spec = parse_target(args.target)
    credential = connect(args)
    cloud = credential.cloud

    def say(line: str) -> None:
        if not args.json:
            print(line, file=sys.stderr, flush=True)

    async def work(stop: asyncio.Event) -> PruneResult:
        async def token() -> str:
            return await asyncio.to_thread(credential.token)

        async with GraphClient(
            token=token,
            base_url=cloud.graph_url,
            verify=cloud.ca_file,
            timeouts=credential.timeouts,
            pacer=Pacer(max_concurrency=args.workers),
            connect=cloud.connect,
        ) as client:
            if args.dry_run:
                return await prune_target(client, spec, None, dry_run=True, say=say, stop=stop)
            path = Path(args.state) if args.state else default_state_path()
            with open_state(path) as store:
                return await prune_target(
                    client, spec, store, workers=args.workers, say=say, stop=stop
                )

    result = asyncio.run(
        run_until_signalled(work, say, "stopping; the next run resumes where this one was")
    )
    if args.json:
        print(json.dumps(asdict(result), ensure_ascii=False))
    else:
        verb = "would remove" if result.dry_run else "removed"
        print(
            f"{result.files} files, {result.pruned_files} with older versions: {verb} "
            f"{result.versions} versions, {result.bytes} bytes; {result.failed} failed"
        )
    if result.stopped:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.failed == 0 else EXIT_FINDINGS
