"""The exceptions sharelift raises, and the exit code each maps to.

    ShareliftError                  base of everything sharelift raises on purpose
    ├── UsageError                  bad flags, option values or arguments (exit 2)
    ├── SourceError                 SOURCE is missing, not a folder, or unreadable (exit 2)
    ├── ConfigError                 a job file or config file that cannot be used (exit 2)
    ├── AuthError                   no credential, a refused one, or no TTY for a prompt (exit 3)
    ├── TargetError                 TARGET cannot be resolved to a drive and folder (exit 4)
    ├── EmulatorError               the local emulator cannot start or its data folder is unusable
    ├── BusyError                   the same job (or job file) is running already (exit 75)
    └── GraphError                  a Microsoft Graph call failed; its own tree (NotFound,
                                    Throttled, TransportError, ...) is in sharelift.graph.errors

Messages are written for the person at the terminal: one line, naming the flag, file, row or
path at fault. They never contain a token, a secret or a SAS signature.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # the command completed, but with failures or (with --fail-on-findings) findings
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_TARGET = 4
EXIT_TEMPFAIL = 75  # sysexits' EX_TEMPFAIL: nothing is wrong, try again later (cron, systemd)
EXIT_INTERRUPTED = 130


class ShareliftError(Exception):
    """Base class: an error sharelift reports as one clear line and an exit code."""

    exit_code: int = 1


class UsageError(ShareliftError):
    """A flag, option or argument is invalid; the message names it."""

    exit_code = EXIT_USAGE


class SourceError(ShareliftError):
    """The source tree cannot be read at all (a single unreadable entry is a finding, not this)."""

    exit_code = EXIT_USAGE


class ConfigError(ShareliftError):
    """A job file or configuration file is unusable; the message names file, row and column."""

    exit_code = EXIT_USAGE


class AuthError(ShareliftError):
    """Authentication failed or would need a prompt that cannot be shown."""

    exit_code = EXIT_AUTH


class TargetError(ShareliftError):
    """The target URL, drive or folder cannot be resolved."""

    exit_code = EXIT_TARGET


class EmulatorError(ShareliftError):
    """The emulator cannot start, or its data folder is not an emulator's."""

    exit_code = 1


class BusyError(ShareliftError):
    """Another run holds the lock of this job or job file; this run changed nothing."""

    exit_code = EXIT_TEMPFAIL
