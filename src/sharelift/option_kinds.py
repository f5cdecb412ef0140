"""The kinds of value an option holds (`sharelift.config`'s table): how each reads text from a
flag or the environment, loads a value from a TOML file or a library keyword, and shows itself.

Every `parse` and `load` raises ValueError saying what is wanted; `sharelift.config.Option`
turns that into an OptionError naming the option.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

from sharelift.errors import ShareliftError

KIB = 1024
MIB = 1024 * KIB

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _without_flag(exc: ShareliftError) -> str:
    """A message from a parser that still names its flag (`--rename: ...`), without it."""
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(("--", "TARGET: ")) else text


@dataclass(frozen=True)
class Kind:
    """What an option holds. `parse` reads text (a flag or an environment variable), `load` a
    value from a TOML file or a library keyword; both raise ValueError saying what is wanted."""

    label: str = "text"
    metavar: str = "TEXT"

    def parse(self, text: str) -> Any:
        return text

    def load(self, value: object) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        raise ValueError(f"expected {self.label}, got {value!r}")

    def show(self, value: Any) -> str:
        """The value as a person would type it."""
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Location(Kind):
    label: str = "a path"
    metavar: str = "PATH"

    def parse(self, text: str) -> str:
        return os.path.expanduser(text)

    def load(self, value: object) -> Any:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        return super().load(value)


@dataclass(frozen=True)
class StateLocation(Location):
    """A state store: a file's path, or a database URL whose password is never shown."""

    metavar: str = "PATH|URL"

    def parse(self, text: str) -> str:
        from sharelift.urls import is_url

        return text if is_url(text) else super().parse(text)

    def show(self, value: Any) -> str:
        from sharelift.urls import hide_password

        return "" if value is None else hide_password(str(value))


@dataclass(frozen=True)
class Url(Kind):
    """A service's URL (a broker): shown without its password."""

    label: str = "a URL"
    metavar: str = "URL"

    def show(self, value: Any) -> str:
        from sharelift.urls import hide_password

        return "" if value is None else hide_password(str(value))


@dataclass(frozen=True)
class Switch(Kind):
    label: str = "true or false"
    metavar: str = ""

    def parse(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {text!r}")

    def load(self, value: object) -> Any:
        return value if isinstance(value, bool) else super().load(value)

    def show(self, value: Any) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...] = ()
    metavar: str = "NAME"

    def parse(self, text: str) -> str:
        if text not in self.choices:
            raise ValueError(f"choose one of {', '.join(self.choices)}, not {text!r}")
        return text


@dataclass(frozen=True)
class Integer(Kind):
    label: str = "a whole number"
    metavar: str = "N"
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, text: str) -> int:
        try:
            number = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        return self._check(number)

    def load(self, value: object) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        return self._check(value)

    def _check(self, value: int) -> int:
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}, not {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}, not {value}")
        return value


@dataclass(frozen=True)
class Count(Integer):
    """A flag given once or more (`-v`, `-vv`); a number in the environment or a file."""

    metavar: str = ""
    short: str = ""
    """The one-letter flag that counts (`-v`)."""


@dataclass(frozen=True)
class Number(Kind):
    label: str = "a number"
    metavar: str = "SECONDS"
    minimum: float = 0.0
    maximum: float | None = None
    positive: bool = False

    def parse(self, text: str) -> float:
        try:
            number = float(text.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        return self._check(number)

    def load(self, value: object) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        return self._check(value)

    def _check(self, value: float) -> float:
        if self.positive and value <= 0:
            raise ValueError(f"must be more than 0, not {value}")
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            top = f" and {self.maximum:g}" if self.maximum is not None else ""
            word = "between" if top else "at least"
            raise ValueError(f"must be {word} {self.minimum:g}{top}, not {value}")
        return float(value)

    def show(self, value: Any) -> str:
        return "" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Size(Kind):
    """Bytes, written `10M`, `320k` or `5242880` (binary units); a multiple of `unit` below
    `below`."""

    label: str = "a size"
    metavar: str = "SIZE"
    unit: int = 1
    below: int = 0

    def parse(self, text: str) -> int:
        clean = text.strip().lower().removesuffix("b").removesuffix("i")
        units = {"k": KIB, "m": MIB}
        try:
            if clean and clean[-1] in units:
                number = int(float(clean[:-1]) * units[clean[-1]])
            else:
                number = int(clean)
        except ValueError:
            raise ValueError(f"expected a size like 10M or 320k, got {text!r}") from None
        return self._check(number)

    def load(self, value: object) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a size like 10M or 320k, got {value!r}")
        return self._check(value)

    def _check(self, value: int) -> int:
        if value % self.unit or not 0 < value < self.below:
            raise ValueError(
                f"must be a multiple of {self.show(self.unit)} below {self.show(self.below)}, "
                f"not {value}"
            )
        return value

    def show(self, value: Any) -> str:
        if value % MIB == 0:
            return f"{value // MIB}M"
        return f"{value // KIB}k" if value % KIB == 0 else str(value)


@dataclass(frozen=True)
class Texts(Kind):
    """Several values: a flag given again, a TOML list, comma-separated in the environment
    (CSV quoting for a value that holds a comma)."""

    label: str = "a list"
    metavar: str = "TEXT"

    def parse(self, text: str) -> tuple[str, ...]:
        rows = list(csv.reader([text], skipinitialspace=True)) if text.strip() else [[]]
        return tuple(item for item in rows[0] if item)

    def load(self, value: object) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValueError(f"expected a list of text, got {value!r}")

    def show(self, value: Any) -> str:
        return ", ".join(value)


@dataclass(frozen=True)
class Extensions(Kind):
    label: str = "extensions"
    metavar: str = "LIST"

    def parse(self, text: str) -> frozenset[str]:
        from sharelift.source.walk import ScanOptions

        try:
            return ScanOptions.parse_extensions(text)
        except ShareliftError as exc:
            raise ValueError(_without_flag(exc)) from None

    def load(self, value: object) -> Any:
        if isinstance(value, list | tuple | set | frozenset):
            return self.parse(":".join(str(v) for v in value)) if value else frozenset()
        return super().load(value)

    def show(self, value: Any) -> str:
        return ":".join(sorted(value))


@dataclass(frozen=True)
class Date(Kind):
    label: str = "a date"
    metavar: str = "DATE"

    def parse(self, text: str) -> dt.datetime:
        from sharelift.source.walk import ScanOptions

        try:
            return ScanOptions.parse_date("", text)
        except ShareliftError as exc:
            raise ValueError(str(exc).removeprefix(": ")) from None

    def load(self, value: object) -> Any:
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.astimezone()
        if isinstance(value, dt.date):
            return self.load(dt.datetime(value.year, value.month, value.day))
        return super().load(value)

    def show(self, value: Any) -> str:
        return "" if value is None else value.isoformat()


@dataclass(frozen=True)
class Rename(Kind):
    label: str = "a rename policy"
    metavar: str = "POLICY"

    def parse(self, text: str) -> Any:
        from sharelift.source.rules import RenamePolicy

        try:
            return RenamePolicy.parse(text)
        except ShareliftError as exc:
            raise ValueError(_without_flag(exc)) from None

    def load(self, value: object) -> Any:
        from sharelift.source.rules import RenamePolicy

        return value if isinstance(value, RenamePolicy) else super().load(value)
