"""The command line's options, made from the table in sharelift.config.

`add_options(parser, command)` declares a command's flags; after argparse, `resolve(command,
args)` gives every option its value from the first of: the flag, the environment
(`SHARELIFT_...`), the config file (`--config FILE` or `SHARELIFT_CONFIG`), the saved profile
(connection options), the default, and records where each came from (`sharelift config show`).
Flags are parsed as text here, not by argparse, so that a bad value gets the same message
whichever of the three places it came from.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sharelift.config import GROUPS, OPTIONS, Option, options_for
from sharelift.errors import EXIT_USAGE, ConfigError, ShareliftError, UsageError
from sharelift.option_kinds import Count, Switch, Texts


@dataclass(frozen=True)
class Setting:
    """An option's effective value and where it came from: `flag`, `environment`, `file`,
    `profile` or `default`; `where` names the flag, variable, file key or profile."""

    option: Option
    value: Any
    origin: str = "default"
    where: str = ""

    def describe(self) -> str:
        """How a person would find this value: the flag, variable or key it came from, or,
        for a default, the ways to set it."""
        if self.origin != "default":
            return self.where
        ways = [w for w in (self.option.flag, self.option.env) if w]
        return " or ".join(ways)


Settings = dict[str, Setting]
PROFILE_KEYS = ("cloud", "emulator", "auth", "tenant", "client_id", "certificate")
"""Connection options a profile saved by `sharelift login` may fill in."""
POSITIONALS = {"source": "SOURCE", "target": "TARGET"}


class Parser(argparse.ArgumentParser):
    """argparse that exits with the usage code and a one-line message."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _help(option: Option) -> str:
    text = option.help + (" (required)" if option.required else "")
    shown = option.describe_default()
    if (shown and option.default not in (False, None, (), "")) or option.default_text:
        text += f" (default: {shown})"
    return f"{text} [{option.env}]".replace("%", "%%")


def add_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Declare `command`'s flags, grouped as in the table. Values stay text until `resolve`."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in options_for(command):
        if option.flag is None:
            continue
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(GROUPS[option.group].lower())
        target: Any = groups[option.group]
        if option.aliases:
            target = target.add_mutually_exclusive_group()
        common: dict[str, Any] = {"dest": option.name, "default": argparse.SUPPRESS}
        if isinstance(option.kind, Count):
            flags = [f for f in (option.kind.short, option.flag) if f]
            target.add_argument(*flags, action="count", help=_help(option), **common)
        elif isinstance(option.kind, Switch):
            action = argparse.BooleanOptionalAction if option.negatable else "store_true"
            target.add_argument(option.flag, action=action, help=_help(option), **common)
        elif isinstance(option.kind, Texts):
            target.add_argument(
                option.flag,
                action="append",
                metavar=option.kind.metavar,
                help=_help(option),
                **common,
            )
        else:
            target.add_argument(
                option.flag, metavar=option.kind.metavar, help=_help(option), **common
            )
        for flag, value, text in option.aliases:
            target.add_argument(flag, action="store_const", const=value, help=text, **common)


def resolve(
    command: str, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Settings:
    """Every option of `command` with its value and origin; sets each value on `args` too.
    Raises UsageError (a flag or variable) or ConfigError (the file) naming where a bad value
    came from, and UsageError for a required option given nowhere."""
    settings = resolve_options(
        options_for(command), args, environ, fill_profile=command != "logout"
    )
    for name, setting in settings.items():
        if setting.option.required and setting.value is None:
            raise UsageError(f"{setting.option.flag} {setting.option.kind.metavar} is required")
        setattr(args, name, setting.value)
    args.settings = settings
    return settings


def resolve_options(
    options: list[Option],
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    *,
    fill_profile: bool = True,
) -> Settings:
    """`options` (in table order: `config` first) resolved from `args`, the environment, the
    config file and the profile."""
    environ = os.environ if environ is None else environ
    given = vars(args)
    settings: Settings = {}
    file_values: dict[str, Any] = {}
    file_name = ""
    for option in options:
        if option.name in given and option.flag is not None:
            settings[option.name] = _from(option, given[option.name], "flag", option.flag)
        elif environ.get(option.env, ""):
            settings[option.name] = _from(option, environ[option.env], "environment", option.env)
        elif option.key and option.key in file_values:
            where = f"{file_name}: {option.key}"
            settings[option.name] = _from(option, file_values[option.key], "file", where)
        else:
            settings[option.name] = Setting(option, option.load(option.default))
        if option.name == "config" and settings["config"].value:
            file_name = settings["config"].value
            file_values = load_file(Path(file_name))
    if "profile" in settings and fill_profile:
        _fill_from_profile(settings)
    return settings


def _from(option: Option, raw: Any, origin: str, where: str) -> Setting:
    try:
        if origin == "environment":
            try:
                value = option.kind.parse(raw)
            except ValueError as exc:
                raise UsageError(str(exc), option=option.name) from None
        else:
            value = option.load(raw)
    except ShareliftError as exc:
        error = ConfigError if origin == "file" else UsageError
        raise error(f"{where}: {exc.reason}") from None
    return Setting(option, value, origin, where)


def _fill_from_profile(settings: Settings) -> None:
    from sharelift.auth import load_profile

    name = settings["profile"].value
    profile = load_profile(name)
    for key in PROFILE_KEYS:
        setting = settings.get(key)
        if setting is not None and setting.origin == "default" and profile.get(key):
            value = setting.option.load(profile[key])
            settings[key] = Setting(setting.option, value, "profile", f"profile {name!r}")


def load_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML config file, by option key (`migrate.workers`). Raises
    ConfigError for an unreadable file, a key no option has, or a secret in a file that
    others may read."""
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    values: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict) and key in GROUPS:
            values.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            values[key] = value
    by_key = {o.key: o for o in OPTIONS.values() if o.key}
    for key in values:
        option = by_key.get(key)
        if option is None:
            raise ConfigError(f"{path}: unknown setting {key!r} (see `sharelift config docs`)")
        if option.secret and mode & 0o077:
            raise ConfigError(
                f"{path} holds a secret ({key}) and others may read it (mode {mode:o}); "
                "`chmod 600` it"
            )
    return values


def api_options(args: argparse.Namespace, function: str) -> dict[str, Any]:
    """The resolved values of the options the library's `function` takes."""
    settings: Settings = args.settings
    return {name: s.value for name, s in settings.items() if function in s.option.api}


def error_text(exc: ShareliftError, settings: Settings | None) -> str:
    """An error's one line for the terminal: an option it names becomes the flag, variable or
    file key its value came from (or, for a default, the ways to set it)."""
    name = exc.option
    if name is None:
        return str(exc)
    if name in POSITIONALS:
        return f"{POSITIONALS[name]}: {exc.reason}"
    setting = (settings or {}).get(name)
    if setting is None:
        option = OPTIONS.get(name)
        if option is None:
            return str(exc)
        setting = Setting(option, None)
    if setting.origin == "default":
        return f"{exc.reason} ({setting.describe()})"
    return f"{setting.describe()}: {exc.reason}"
