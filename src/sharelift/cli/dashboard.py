"""`sharelift dashboard`: the web dashboard over a state store, until Ctrl-C; and the dashboard
served beside a run (`migrate --dashboard PORT`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from sharelift.cli.options import Parser, add_options


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve a live web page over the state store (read-only)",
        description="Serve a web page that shows every job of the state store: how far each "
        "is, how fast it goes, what failed and why, its rounds and reports; it updates by "
        "itself while runs go on, and only reads. On 127.0.0.1 by default; on any other "
        "address it asks for a token (printed at start, or SHARELIFT_DASHBOARD_TOKEN).",
    )
    add_options(p, "dashboard")
    p.set_defaults(run=run)


def state_path(args: argparse.Namespace) -> str:
    """The state store a command names (`--state`: a path, or a `postgresql://` URL), else
    the default one."""
    from sharelift.job import default_state_path

    return str(args.state) if args.state else str(default_state_path())


def run(args: argparse.Namespace) -> int:
    from sharelift.dashboard import DashboardServer

    server = DashboardServer(
        state_path(args),
        host=args.dashboard_host,
        port=args.dashboard_port,
        token=args.dashboard_token or None,
    ).start()
    print(f"dashboard: {server.url}", file=sys.stderr, flush=True)
    if server.token is not None:
        print(
            "dashboard: it listens beyond this machine and asks for the token above; the "
            "traffic is not encrypted, so prefer an SSH tunnel or a TLS proxy in front of it",
            file=sys.stderr,
            flush=True,
        )
    print("dashboard: Ctrl-C stops it", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


@contextlib.contextmanager
def beside_run(port: int | None, state: str) -> Iterator[None]:
    """The dashboard on 127.0.0.1:`port` for as long as the block runs (nothing when `port`
    is None); its address is printed."""
    if port is None:
        yield
        return
    from sharelift.dashboard import DashboardServer

    with DashboardServer(state, port=port) as server:
        print(f"dashboard: {server.url}", file=sys.stderr, flush=True)
        yield
