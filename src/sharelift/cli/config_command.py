"""`sharelift config show [COMMAND ...]` (the settings a command would use, and where each came
from) and `sharelift config docs` (docs/options.md, made from the table in sharelift.config)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sharelift.cli.options import Parser, Settings, add_options, resolve, resolve_options
from sharelift.config import GROUPS, OPTIONS, Option
from sharelift.option_kinds import Count, Switch


def register(
    sub: argparse._SubParsersAction[Parser], parser: Callable[[], argparse.ArgumentParser]
) -> None:
    """`parser` builds the whole command line, to read a command's flags for `config show`."""
    p = sub.add_parser(
        "config",
        help="show the effective settings, or the options reference",
        description="Every option has a flag, an environment variable and a config-file key; "
        "see docs/options.md.",
    )
    commands = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    commands.required = True
    show = commands.add_parser(
        "show",
        help="print each setting, its value and where it came from (secrets masked)",
        description="Print the settings COMMAND would use with ARGS (without running it), or "
        "every option without COMMAND; for each, where its value came from: a flag, the "
        "environment, the config file, the saved profile or the default.",
    )
    add_options(show, "config")
    show.add_argument(
        "line", metavar="COMMAND ARGS", nargs=argparse.REMAINDER, help="e.g. migrate --workers 8"
    )
    show.set_defaults(run=lambda args: run_show(args, parser))
    docs = commands.add_parser("docs", help="print the options reference (docs/options.md)")
    docs.set_defaults(run=run_docs)


def run_docs(args: argparse.Namespace) -> int:
    print(reference(), end="")
    return 0


def run_show(args: argparse.Namespace, parser: Callable[[], argparse.ArgumentParser]) -> int:
    if args.line:
        inner = parser().parse_args(args.line)
        if "config" not in vars(inner) and args.config:
            inner.config = args.config
        settings = resolve(inner.command, inner)
    else:
        everything = list(OPTIONS.values())
        namespace = argparse.Namespace(**({"config": args.config} if args.config else {}))
        settings = resolve_options(everything, namespace)
    print(show(settings), end="")
    return 0


def show(settings: Settings) -> str:
    """The settings as aligned text: option, value, where it came from."""
    config = settings.get("config")
    rows = [("option", "value", "from")]
    for setting in settings.values():
        option = setting.option
        origin = setting.origin if setting.origin == "default" else f"{setting.origin} "
        origin += "" if setting.origin in ("default", "flag") else setting.where
        value = option.show(setting.value)
        if not value and setting.origin == "default" and option.default_text:
            value = f"({option.default_text})"
        rows.append((option.flag or option.env, value, origin.strip()))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{a:{widths[0]}}  {b:{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    head = f"config file: {config.value if config and config.value else 'none'}\n"
    return head + "\n".join(lines) + "\n"


# --- the options reference ---------------------------------------------------------------------

_INTRO = """\
# Options

<!-- Made from src/sharelift/config.py by `sharelift config docs > docs/options.md`;
     tests/unit/test_config.py fails when this file and the table differ. -->

Every option of every command is declared once, in `src/sharelift/config.py`, and can be given
in three ways. The first one found wins:

1. the flag on the command line;
2. an environment variable: `SHARELIFT_` and the option's name in capitals;
3. a key in the config file named by `--config FILE` or `SHARELIFT_CONFIG` (TOML): the options
   of each group below sit in the table of that name, the general ones at the top of the file;

then, for the connection options, the profile saved by `sharelift login`, and last the default.
`sharelift config show [COMMAND ARGS]` prints the values a command would use and where each
came from. Secrets have no flag (a flag shows in the process list): give them in the
environment, or in a config file that only its owner may read (`chmod 600`; sharelift refuses
one that others may read). A switch given as a variable or a key takes `true` or `false`
(`1`/`0`, `yes`/`no`); a list takes comma-separated values, CSV-quoted when one holds a comma.

The library's keyword arguments are the same options, by name, with the same defaults and
checks: `sharelift.scan()` takes those marked *scan()* and `sharelift.migrate()` those marked
*migrate()* (see [library.md](library.md)).

```toml
# /etc/sharelift/sharelift.toml (chmod 600 if it holds a secret)
state = "/var/lib/sharelift/state.db"

[connection]
auth = "certificate"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
certificate = "/etc/sharelift/app.pem"

[source]
exclude = ["*.tmp", "~$*"]

[migrate]
workers = 8
on_conflict = "overwrite"
```
"""


def _flag(option: Option) -> str:
    if option.flag is None:
        return "(none: a secret)"
    metavar = f" {option.kind.metavar}" if option.kind.metavar else ""
    flags = [f"`{option.flag}{metavar}`"]
    if isinstance(option.kind, Switch) and option.negatable:
        flags.append(f"`--no-{option.flag.removeprefix('--')}`")
    flags += [f"`{flag}`" for flag, _, _ in option.aliases]
    if isinstance(option.kind, Count) and option.kind.short:
        flags.insert(0, f"`{option.kind.short}` (`-{option.kind.short[1:] * 2}`)")
    return ", ".join(flags)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\\\\", "\\\\\\\\")


def reference() -> str:
    """docs/options.md: a table per group, a row per option."""
    parts = [_INTRO]
    for group, title in GROUPS.items():
        options = [o for o in OPTIONS.values() if o.group == group]
        parts.append(f"\n## {title}\n\n")
        parts.append("| flag | environment | config file | default | used by | meaning |\n")
        parts.append("|---|---|---|---|---|---|\n")
        for o in options:
            used = [*o.commands, *(f"*{f}()*" for f in o.api)]
            default = o.describe_default()
            row = [
                _flag(o),
                f"`{o.env}`",
                f"`{o.key}`" if o.key else "-",
                _cell(default) if default else "",
                ", ".join(used),
                _cell(o.help) + (" (required)" if o.required else ""),
            ]
            parts.append("| " + " | ".join(row) + " |\n")
    return "".join(parts)
