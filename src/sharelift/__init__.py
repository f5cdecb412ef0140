"""sharelift: migrate file shares into OneDrive for Business and SharePoint Online.

The public surface (docs/library.md shows each with examples):

    scan(source, target=None, **options) -> ScanResult
    migrate(source, target, *, credential, progress=(), **options) -> MigrationResult
    migrate_async(...)                     the same, awaited; `stop=asyncio.Event()` ends it
    Credential                             sign-ins: from_secret, from_certificate, from_token,
                                           device_code, managed_identity, from_profile
    ScanResult, MigrationResult            frozen dataclasses of what happened
    ProgressEvent, Subscriber              what `progress=[callback, ...]` receives: ItemEvent,
                                           BytesEvent, PhaseEvent, SnapshotEvent, MessageEvent,
                                           PlanEvent
    ShareliftError and its subclasses      the exception tree, drawn in sharelift.errors
    sharelift.emulator.Emulator            a local Microsoft 365 tenant for tests and scripts
    sharelift.config                       every option, its default and its check

Everything else lives in modules that may change between releases. The names above are
imported when first used, so that `import sharelift` stays fast.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sharelift.errors import (
    AuthError,
    BusyError,
    ConfigError,
    EmulatorError,
    OptionError,
    ShareliftError,
    SourceError,
    TargetError,
    UnavailableError,
    UsageError,
)

if TYPE_CHECKING:
    from sharelift.api import MigrationResult, ScanResult, migrate, migrate_async, scan
    from sharelift.credential import Credential
    from sharelift.progress import (
        BytesEvent,
        ItemEvent,
        MessageEvent,
        Outcome,
        PhaseEvent,
        PlanEvent,
        ProgressEvent,
        SnapshotEvent,
        Subscriber,
    )

__version__ = "0.1.0"

# A library logs, it does not print: nothing shows unless the caller attaches a handler
# (the command line's `--log-file` and `-v` do, through sharelift.logs).
logging.getLogger("sharelift").addHandler(logging.NullHandler())

_LAZY = {
    "Credential": "sharelift.credential",
    "MigrationResult": "sharelift.api",
    "ScanResult": "sharelift.api",
    "BytesEvent": "sharelift.progress",
    "ItemEvent": "sharelift.progress",
    "MessageEvent": "sharelift.progress",
    "Outcome": "sharelift.progress",
    "PhaseEvent": "sharelift.progress",
    "PlanEvent": "sharelift.progress",
    "ProgressEvent": "sharelift.progress",
    "SnapshotEvent": "sharelift.progress",
    "Subscriber": "sharelift.progress",
    "migrate": "sharelift.api",
    "migrate_async": "sharelift.api",
    "scan": "sharelift.api",
}

__all__ = [
    "AuthError",
    "BusyError",
    "BytesEvent",
    "ConfigError",
    "Credential",
    "EmulatorError",
    "ItemEvent",
    "MessageEvent",
    "MigrationResult",
    "OptionError",
    "Outcome",
    "PhaseEvent",
    "PlanEvent",
    "ProgressEvent",
    "ScanResult",
    "ShareliftError",
    "SnapshotEvent",
    "SourceError",
    "Subscriber",
    "TargetError",
    "UnavailableError",
    "UsageError",
    "__version__",
    "migrate",
    "migrate_async",
    "scan",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sharelift' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
