"""Signing in from the command line: the connection options (flag, environment, config file,
saved profile) become a `sharelift.Credential`."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from sharelift.auth import token_cache_path
from sharelift.credential import Credential, sign_in
from sharelift.errors import OptionError, UnavailableError, UsageError
from sharelift.network import Timeouts

_NOWHERE = (
    "no tenant to sign in to: give --tenant TENANT (its id or domain, e.g. contoso.com) and "
    "--client-id ID, or save them once with `sharelift login`; to try sharelift without a "
    "tenant, start the emulator (`sharelift emulator --data DIR`) and add --emulator DIR"
)


def method_of(args: argparse.Namespace) -> str:
    """The sign-in method: the one chosen, else the emulator's app secret, else device code."""
    return str(args.auth or ("secret" if args.emulator else "device_code"))


def connect(args: argparse.Namespace) -> Credential:
    """The credential the connection options describe. A device-code prompt goes to stderr,
    and only when a person is at the terminal; otherwise such a sign-in fails at once.

    Mistakes are caught before any sign-in: neither a tenant nor the emulator (the usual
    forgotten flag) is a UsageError that says how to give either; an emulator that does not
    answer is an UnavailableError that asks whether it is running."""
    method = method_of(args)
    if args.emulator:
        check_emulator(Path(args.emulator))
    elif not args.tenant and method in ("device_code", "secret", "certificate"):
        raise UsageError(_NOWHERE)
    secret = args.client_secret
    if args.secret_file:
        try:
            secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OptionError("secret_file", f"{args.secret_file}: {exc.strerror}") from None
    person = sys.stdin.isatty() and sys.stderr.isatty()
    return sign_in(
        method,
        tenant=args.tenant,
        client_id=args.client_id,
        secret=secret,
        certificate=args.certificate,
        certificate_password=args.certificate_password,
        token=args.access_token,
        managed_identity_client_id=args.managed_identity_client_id,
        cloud=args.cloud,
        emulator=args.emulator,
        ca_bundle=args.ca_bundle,
        on_message=(lambda text: print(text, file=sys.stderr, flush=True)) if person else None,
        cache=token_cache_path(args.profile),
        timeouts=Timeouts(args.connect_timeout, args.read_timeout),
    )


def check_emulator(folder: Path) -> None:
    """The emulator whose data folder is `folder` answers on its port; raises
    UnavailableError asking whether it runs, UsageError when the folder is no emulator's."""
    from sharelift.clouds import Cloud

    cloud = Cloud.from_emulator(folder)
    url = urlsplit(cloud.graph_url)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 443), timeout=3):
            pass
    except OSError as exc:
        raise UnavailableError(
            f"the emulator of {folder} does not answer at {url.scheme}://{url.netloc} "
            f"({exc.strerror or type(exc).__name__}): is it running? Start it with "
            f"`sharelift emulator --data {folder}`"
        ) from None
