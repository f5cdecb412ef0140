"""`sharelift login` (sign in once, save a profile) and `sharelift logout` (forget it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sharelift.cli.options import Parser, add_options


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "login",
        help="sign in once and save a profile (device code for people, or an app's settings)",
        description="Save where and how to sign in as a profile, and sign in now to check it. "
        "For device code, the refresh token is kept in a private token cache so later runs "
        "need no prompt.",
    )
    add_options(p, "login")
    p.set_defaults(run=run_login)
    p = sub.add_parser("logout", help="forget a profile and its cached tokens")
    add_options(p, "logout")
    p.set_defaults(run=run_logout)


def run_login(args: argparse.Namespace) -> int:
    from sharelift.auth import save_profile
    from sharelift.cli.connect import connect, method_of

    credential = connect(args)
    credential.token()
    values = {
        "cloud": credential.cloud.name if not credential.cloud.emulator else "",
        "emulator": str(Path(args.emulator).resolve()) if args.emulator else "",
        "auth": method_of(args),
        "tenant": args.tenant,
        "client_id": args.client_id,
        "certificate": str(Path(args.certificate).resolve()) if args.certificate else "",
    }
    where = save_profile(args.profile, values)
    accounts = credential.accounts()
    who = f" as {', '.join(accounts)}" if accounts else ""
    print(f"signed in{who}; profile {args.profile!r} saved in {where}")
    return 0


def run_logout(args: argparse.Namespace) -> int:
    from sharelift.auth import delete_profile, token_cache_path

    cache = token_cache_path(args.profile)
    had_cache = cache.exists()
    cache.unlink(missing_ok=True)
    had_profile = delete_profile(args.profile)
    if had_cache or had_profile:
        print(f"profile {args.profile!r} and its tokens forgotten")
    else:
        print(f"no profile {args.profile!r}")
    return 0
