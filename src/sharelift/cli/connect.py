"""Signing in from the command line: the connection options (flag, environment, config file,
saved profile) become a `sharelift.Credential`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sharelift.auth import token_cache_path
from sharelift.credential import Credential, sign_in
from sharelift.errors import OptionError
from sharelift.network import Timeouts


def method_of(args: argparse.Namespace) -> str:
    """The sign-in method: the one chosen, else the emulator's app secret, else device code."""
    return str(args.auth or ("secret" if args.emulator else "device_code"))


def connect(args: argparse.Namespace) -> Credential:
    """The credential the connection options describe. A device-code prompt goes to stderr,
    and only when a person is at the terminal; otherwise such a sign-in fails at once."""
    secret = args.client_secret
    if args.secret_file:
        try:
            secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OptionError("secret_file", f"{args.secret_file}: {exc.strerror}") from None
    person = sys.stdin.isatty() and sys.stderr.isatty()
    return sign_in(
        method_of(args),
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
