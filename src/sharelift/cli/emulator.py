"""`sharelift emulator --data DIR`: serve a local Microsoft 365 tenant until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from sharelift.cli.options import Parser, add_options
from sharelift.errors import OptionError


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "emulator",
        help="serve a local Microsoft 365 tenant (Graph, sign-in, SharePoint REST) over HTTPS",
        description="Serve a local Microsoft 365 tenant over HTTPS. On first start it creates "
        "its CA, server certificate, app registration and users in DIR; DIR/emulator.json "
        "tells clients (and `--emulator DIR`) where and how to connect.",
    )
    add_options(p, "emulator")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sharelift.emulator.server import EmulatorServer
    from sharelift.emulator.settings import EmulatorSettings, Faults

    faults = Faults()
    faults.update(
        {
            "latency_ms": args.emulator_latency_ms,
            "bandwidth_bps": args.emulator_bandwidth,
            "ru_per_minute": args.emulator_ru_per_minute,
            "error_rate": args.emulator_error_rate,
            "drop_rate": args.emulator_drop_rate,
            "replace_not_found_rate": args.emulator_replace_not_found_rate,
            **({} if args.emulator_fault_seed is None else {"seed": args.emulator_fault_seed}),
        }
    )
    try:
        faults.update({"never_answer": args.emulator_never_answer or ""})
    except ValueError as exc:
        message = str(exc).removeprefix("never_answer: ")
        raise OptionError("emulator_never_answer", message) from None
    settings = EmulatorSettings(
        data_dir=Path(args.emulator_data),
        host=args.emulator_host,
        port=args.emulator_port,
        tenant=args.emulator_tenant,
        users_file=Path(args.emulator_users) if args.emulator_users else None,
        upload_session_lifetime_s=args.emulator_session_lifetime,
        provisioning_delay_s=args.emulator_provisioning_delay,
        migration_api=args.emulator_migration_api,
        office_enrichment=args.emulator_office_enrichment,
        faults=faults,
    )
    server = EmulatorServer(settings)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        server.start()
        info = server.info
        print(f"sharelift emulator for tenant {info['tenant']} ({info['tenant_id']})")
        print(f"  base URL        {info['base_url']}")
        print(f"  Graph           {info['graph_url']}")
        print(f"  CA certificate  {info['ca_file']}")
        print(f"  emulator.json   {server.data_dir / 'emulator.json'}")
        print(f"  use it with     sharelift ... --emulator {server.data_dir}")
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("sharelift emulator: stopped", file=sys.stderr)
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0
