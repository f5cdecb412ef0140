"""The exceptions sharelift raises, and the exit code each maps to on the command line.

    ShareliftError                  base of everything sharelift raises on purpose
    ├── UsageError                  bad option values or arguments (exit 2)
    │   └── OptionError             one option's value is invalid; `.option` names it (also a
    │                               ValueError)
    ├── SourceError                 SOURCE is missing, not a folder, or unreadable (exit 2)
    ├── ConfigError                 a job file or config file that cannot be used (exit 2)
    ├── StateError                  the state store cannot be opened, or is not one (exit 2;
    │                               sharelift.state)
    ├── AuthError                   no credential, a refused one, or nobody to answer a prompt
    │                               (exit 3)
    ├── TargetError                 TARGET does not exist or cannot be used as a folder (exit 4)
    ├── UnavailableError            Microsoft 365 kept throttling, failing or could not be
    │                               reached after every retry; run again later (exit 75)
    ├── BusyError                   the same job (or job file) is running already (exit 75)
    ├── EmulatorError               the local emulator cannot start or its data folder is unusable
    ├── DashboardError              the dashboard cannot listen where it was asked to (exit 2)
    ├── MigrationApiError           a Migration API call was refused or failed
                                    (sharelift.migration_api.jobs)
    └── GraphError                  a Microsoft Graph call failed (sharelift.graph.errors):
        ├── TransportError          no HTTP response: refused, reset, timed out, TLS
        ├── Unauthorized, Forbidden 401 / 403 (exit 3)
        ├── NotFound, Conflict (NameAlreadyExists), Gone, PreconditionFailed, InvalidRange,
        │   FailedDependency, BadRequest, QuotaExceeded, MalformedResponse
        ├── Throttled               429 or 503 after the retries ran out
        └── ServerError             any other 5xx after the retries ran out

`sharelift.migrate()` and `sharelift.scan()` raise these for what keeps a run from starting at
all; a file that fails during a run is counted in the result, not raised. A run cancelled by its
caller ends with `asyncio.CancelledError` (or `KeyboardInterrupt`), its round recorded as
interrupted.

Messages are written for a person: one line, naming the file, row, path or host at fault. They
never contain a token, a secret or a SAS signature, and they never name a command-line flag:
an error about one option carries `option` (the option's name in `sharelift.config`, which is
also the library's keyword), and the command line turns that into the flag, environment
variable or config-file key the value came from.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # the command completed, but with failures or (with --fail-on-findings) findings
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_TARGET = 4
EXIT_SOFTWARE = 70  # sysexits' EX_SOFTWARE: a defect in sharelift (the CLI's last resort)
EXIT_TEMPFAIL = 75  # sysexits' EX_TEMPFAIL: nothing is wrong, try again later (cron, systemd)
EXIT_INTERRUPTED = 130


class ShareliftError(Exception):
    """Base class: an error sharelift reports as one clear line and an exit code.

    `option` names the option at fault, when one is (`workers`, `client_id`); the message then
    starts with it (`workers: must be at least 1`), and `reason` is the message without it.
    """

    exit_code: int = 1
    option: str | None = None

    def __init__(self, message: str = "", *, option: str | None = None) -> None:
        self.option = option
        self.reason = message
        super().__init__(f"{option}: {message}" if option else message)


class UsageError(ShareliftError):
    """A flag, option or argument is invalid."""

    exit_code = EXIT_USAGE


class OptionError(UsageError, ValueError):
    """One option's value is invalid; `option` names it and the message says what is wanted."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message, option=option)


class SourceError(ShareliftError):
    """The source tree cannot be read at all (a single unreadable entry is a finding, not this)."""

    exit_code = EXIT_USAGE


class ConfigError(ShareliftError):
    """A job file or configuration file is unusable; the message names file, row and key."""

    exit_code = EXIT_USAGE


class AuthError(ShareliftError):
    """Authentication failed or would need a prompt that cannot be shown."""

    exit_code = EXIT_AUTH


class TargetError(ShareliftError):
    """The target URL, drive or folder does not exist or cannot be used."""

    exit_code = EXIT_TARGET


class UnavailableError(ShareliftError):
    """Microsoft 365 kept throttling, kept failing (5xx) or could not be reached after every
    retry. Nothing was changed; the same run later is expected to work. The Graph error that
    ended the retries is the `__cause__`."""

    exit_code = EXIT_TEMPFAIL


class EmulatorError(ShareliftError):
    """The emulator cannot start, or its data folder is not an emulator's."""

    exit_code = 1


class DashboardError(ShareliftError):
    """The dashboard cannot listen where it was asked to (the address is taken or not ours)."""

    exit_code = 2


class BusyError(ShareliftError):
    """Another run holds the lock of this job or job file; this run changed nothing."""

    exit_code = EXIT_TEMPFAIL
