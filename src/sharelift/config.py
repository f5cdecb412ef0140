"""Every option of every command, declared once.

An `Option` says what a setting is called, what it holds, its default, its help, whether it is
a secret, and which commands and library functions take it. Everything else is made from this
table:

- the command line's flags (`sharelift.cli.options` builds the parsers from it);
- an environment variable for every option: `SHARELIFT_` and the option's name in capitals
  (`workers` -> `SHARELIFT_WORKERS`; the emulator command's own options are `emulator_...`);
- a key in the TOML config file (`--config FILE` or `SHARELIFT_CONFIG`): the option's group
  is the table, so `workers` is `[migrate] workers = 8`; the `general` group's options sit at
  the top of the file (`state = "..."`);
- the keyword arguments of `sharelift.scan()` and `sharelift.migrate()`, with these defaults,
  and `EngineConfig`'s defaults;
- `sharelift config show` and the options reference, docs/options.md (`sharelift config docs`).

The command line takes a value from the first of: the flag, the environment, the config file,
(for connection options) the saved profile, the default. Secrets have no flag (a flag shows in
the process list): they come from the environment or a config file only readable by its owner.

The kinds of value (a switch, a size, a list of extensions...) are in `sharelift.option_kinds`.
This module only declares and checks; it imports nothing heavy, so that every part of
sharelift may read its defaults from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sharelift.errors import OptionError, ShareliftError
from sharelift.option_kinds import (
    KIB,
    MIB,
    Choice,
    Count,
    Date,
    Extensions,
    Integer,
    Kind,
    Location,
    Number,
    Rename,
    Size,
    StateLocation,
    Switch,
    Texts,
    Url,
)

FRAGMENT_UNIT = 320 * KIB
"""Upload-session fragments are multiples of 320 KiB (graph.drive.FRAGMENT_UNIT):
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession#upload-bytes-to-the-upload-session"""
ENV_PREFIX = "SHARELIFT_"


def unflagged(exc: ShareliftError) -> ShareliftError:
    """`exc` as an OptionError naming its option when its message starts with a flag
    (`--report: cannot create ...`: parts written before this table still name flags), else
    `exc` itself."""
    flag, _, rest = str(exc).partition(": ")
    for option in _TABLE:
        if rest and option.flag == flag:
            return OptionError(option.name, rest)
    return exc


# --- the options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One setting. `flag`, `env` and `key` are derived from `name` and `group` unless given;
    `flag=None` means no flag (secrets), `key=None` no config-file key."""

    name: str
    group: str
    kind: Kind
    default: Any
    help: str
    commands: tuple[str, ...] = ()
    """The commands that take it."""
    api: tuple[str, ...] = ()
    """The library functions that take it as a keyword (`scan`, `migrate`)."""
    flag: str | None = ""
    env: str = ""
    key: str | None = ""
    secret: bool = False
    required: bool = False
    default_text: str = ""
    """How the docs and `config show` describe a default computed at run time."""
    aliases: tuple[tuple[str, str, str], ...] = ()
    """Other flags that set this option: (flag, value, help)."""
    negatable: bool = True
    """A switch also gets `--no-FLAG`, to turn off what the environment or a file turned on."""

    def __post_init__(self) -> None:
        if self.flag == "":
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))
        if not self.env:
            object.__setattr__(self, "env", ENV_PREFIX + self.name.upper())
        if self.key == "":
            leaf = self.flag.removeprefix("--").replace("-", "_") if self.flag else self.name
            key = leaf if self.group == "general" else f"{self.group}.{leaf}"
            object.__setattr__(self, "key", key)

    def load(self, value: object) -> Any:
        """`value` checked and converted; None stays None where the default is None. Raises
        OptionError naming this option."""
        if value is None and self.default is None:
            return None
        try:
            return self.kind.load(value)
        except ValueError as exc:
            raise OptionError(self.name, str(exc)) from None

    def show(self, value: Any) -> str:
        """The value for a person; a secret shows only whether it is set."""
        if self.secret:
            return "(set)" if value else ""
        return self.kind.show(value)

    def describe_default(self) -> str:
        return self.default_text or self.show(self.default)


GROUPS: dict[str, str] = {
    "general": "General: config file, state, reports, output",
    "connection": "Connection and sign-in",
    "source": "Source: filters and names",
    "migrate": "Migration",
    "jobs": "Job files",
    "provision": "OneDrive provisioning",
    "scan": "Scan",
    "status": "Status and reports of past runs",
    "cluster": "Cluster: workers, the broker, units of work",
    "dashboard": "The dashboard",
    "emulator": "The emulator command",
    "demo": "The demo command",
}

SIGN_IN = ("migrate", "provision", "login", "scan", "versions", "worker")
"""The commands that take the connection options (scan: to resolve TARGET through Graph;
worker: each worker machine signs in with its own credentials)."""
_ON_CONFLICT = ("newer", "overwrite", "rename")
AUTH_METHODS = ("device_code", "secret", "certificate", "managed_identity", "token")
CLOUD_NAMES = ("global", "usgov", "usgovdod", "china")


def _o(name: str, group: str, kind: Kind, default: Any, help: str, **more: Any) -> Option:
    return Option(name, group, kind, default, help, **more)


def _emulator(leaf: str, kind: Kind, default: Any, help: str, **more: Any) -> Option:
    """An option of the emulator command: `emulator_LEAF`, flag `--LEAF`."""
    flag = "--" + leaf.replace("_", "-")
    return Option(
        f"emulator_{leaf}", "emulator", kind, default, help, ("emulator",), flag=flag, **more
    )


_TABLE: tuple[Option, ...] = (
    # general
    _o("config", "general", Location(metavar="FILE"), None,
       "read settings from this TOML file (flags and the environment win over it)",
       commands=("scan", "migrate", "provision", "status", "report", "login", "logout",
                 "emulator", "demo", "config", "dashboard", "versions", "worker"), key=None),
    _o("state", "general", StateLocation(), None,
       "the state store: a file (SQLite), or postgresql://USER[:PASSWORD]@HOST/DB shared by "
       "the machines of a cluster",
       commands=("migrate", "status", "report", "dashboard", "versions", "worker"),
       api=("migrate",),
       default_text="state.db in the user state folder"),
    _o("report", "general", Location(metavar="DIR"), None,
       "write the reports into DIR (scan: none unless given, never inside SOURCE; migrate: "
       "reports/job-N/round-M beside the state store)",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("json", "general", Switch(), False, "print JSON (migrate: JSON lines of events)",
       commands=("scan", "migrate", "status", "provision", "versions")),
    _o("quiet", "general", Switch(), False, "no progress display",
       commands=("migrate",)),
    _o("log_file", "general", Location(metavar="FILE"), None,
       "append a log of the run to FILE (private, 0600): what started, each failure and why, "
       "throttling waits, the summary; secrets are never written; the reports' Log Path names "
       "it", commands=("migrate", "provision")),
    _o("verbose", "general", Count(minimum=0, maximum=2, short="-v"), 0,
       "log more: -v what happens (to --log-file, else to stderr), -vv debug details too",
       commands=("migrate", "provision")),
    # connection
    _o("emulator", "connection", Location(metavar="DIR"), None,
       "talk to the local emulator whose data folder is DIR", commands=SIGN_IN),
    _o("cloud", "connection", Choice(choices=CLOUD_NAMES), "global",
       "global, usgov (GCC High), usgovdod or china", commands=SIGN_IN),
    _o("profile", "connection", Kind(metavar="NAME"), "default",
       "a profile saved by `sharelift login`", commands=(*SIGN_IN, "logout")),
    _o("auth", "connection", Choice(choices=AUTH_METHODS, metavar="METHOD"), None,
       "how to sign in: " + ", ".join(AUTH_METHODS) + "; SharePoint REST (provision, "
       "--provision) refuses app-only tokens got with a secret: use certificate there (or "
       "device_code as a SharePoint administrator)", commands=SIGN_IN,
       default_text="the profile's, else device_code (with the emulator: secret)"),
    _o("tenant", "connection", Kind(metavar="TENANT"), "", "tenant id or domain",
       commands=SIGN_IN),
    _o("client_id", "connection", Kind(metavar="ID"), "",
       "the app registration's client id (with the emulator: its app)", commands=SIGN_IN),
    _o("client_secret", "connection", Kind(), "", "the app's client secret (secret sign-in)",
       commands=SIGN_IN, flag=None, secret=True),
    _o("secret_file", "connection", Location(metavar="FILE"), None,
       "read the client secret from FILE", commands=SIGN_IN),
    _o("certificate", "connection", Location(metavar="FILE"), None,
       "PEM (key + certificate) or PFX for certificate sign-in", commands=SIGN_IN),
    _o("certificate_password", "connection", Kind(), "", "the certificate's password",
       commands=SIGN_IN, flag=None, secret=True),
    _o("access_token", "connection", Kind(), "", "a bearer token acquired elsewhere (token "
       "sign-in)", commands=SIGN_IN, flag=None, secret=True),
    _o("managed_identity_client_id", "connection", Kind(metavar="ID"), "",
       "a user-assigned managed identity's client id", commands=SIGN_IN),
    _o("ca_bundle", "connection", Location(metavar="FILE"), None,
       "a CA (PEM) to trust besides the system's, e.g. a TLS-inspecting proxy's; for Graph, "
       "uploads and sign-in alike", commands=SIGN_IN),
    _o("connect_timeout", "connection", Number(positive=True), 30.0,
       "seconds to wait for a connection (a proxy's tunnel included), for sign-in, Graph, "
       "uploads, downloads and SharePoint REST alike; a call that times out is retried where "
       "that is safe", commands=SIGN_IN),
    _o("read_timeout", "connection", Number(positive=True), 120.0,
       "seconds to wait for any byte of an answer (or for the far end to take more of a "
       "request), for every network call", commands=SIGN_IN),
    # source
    _o("rename", "source", Rename(), "underscore",
       "how names SharePoint refuses are fixed: underscore, a single CHAR, fullwidth "
       "(look-alikes) or off (skip)", commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("follow_symlinks", "source", Switch(), False, "follow symbolic links",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("skip_hidden", "source", Switch(), False, "leave out dotfiles and hidden items",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("include", "source", Texts(metavar="GLOB"), (),
       "keep only files matching GLOB (repeatable)",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("exclude", "source", Texts(metavar="GLOB"), (),
       "leave out files and folders matching GLOB (repeatable)",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("skip_extensions", "source", Extensions(), frozenset(),
       "leave out files whose last extension is listed (txt:mp3 or txt,mp3)",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("modified_after", "source", Date(), None, "keep files modified after DATE",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    _o("created_after", "source", Date(), None,
       "keep files created after DATE (where the filesystem records it)",
       commands=("scan", "migrate"), api=("scan", "migrate")),
    # migrate
    _o("site", "migrate", Kind(metavar="URL"), "",
       "target site URL as SPMT names it, e.g. https://contoso.sharepoint.com/sites/Team",
       commands=("migrate",), api=("migrate",)),
    _o("library", "migrate", Kind(metavar="NAME"), "",
       "target document library (display or URL name), with site",
       commands=("migrate",), api=("migrate",)),
    _o("subfolder", "migrate", Kind(metavar="PATH"), "", "folder inside the library",
       commands=("migrate",), api=("migrate",)),
    _o("include_root", "migrate", Switch(), False,
       "put the SOURCE folder itself into the target folder, not only its contents",
       commands=("migrate",), api=("migrate",)),
    _o("on_conflict", "migrate", Choice(choices=_ON_CONFLICT, metavar="POLICY"), "newer",
       "a file of the same name at the target: newer (as SPMT: skip when the target is the "
       "same or newer), overwrite, or rename (keep both)", commands=("migrate",),
       api=("migrate",), aliases=(("--overwrite", "overwrite", "same as --on-conflict "
                                   "overwrite"),)),
    _o("dry_run", "migrate", Switch(), False, "show the plan; change nothing",
       commands=("migrate", "versions"), api=("migrate",)),
    _o("mirror", "migrate", Switch(), False,
       "also delete at the target (to its recycle bin) what was deleted at the source",
       commands=("migrate",), api=("migrate",)),
    _o("verify_target", "migrate", Switch(), False,
       "reconcile with the target first (delta): restore files deleted or changed there",
       commands=("migrate",), api=("migrate",)),
    _o("remove_old_versions", "migrate", Switch(), False,
       "after replacing a file at the target, remove its versions older than the one "
       "written (each counts against the site's quota); `sharelift versions prune` does it "
       "for a whole folder", commands=("migrate",), api=("migrate",)),
    _o("prove_office_files", "migrate", Switch(), True,
       "when a SharePoint library rewrites an Office file as it stores it (its metadata: the "
       "stored hash then differs from the bytes sent), download the stored file and prove "
       "every part of it but that metadata identical to the source's; off: accept such a file "
       "because the upload took every byte, reported as checked by size only",
       commands=("migrate",), api=("migrate",)),
    _o("workers", "migrate", Integer(minimum=1), 16,
       "concurrent transfers at most (versions prune: files at once)",
       commands=("migrate", "versions"), api=("migrate",)),
    _o("chunk_size", "migrate", Size(unit=FRAGMENT_UNIT, below=60 * MIB), 10 * MIB,
       "upload fragment size, a multiple of 320k below 60M; a worker holds two",
       commands=("migrate",), api=("migrate",)),
    _o("via", "migrate", Choice(choices=("graph", "migration-api"), metavar="MOVER"), "graph",
       "how files travel: graph (upload sessions) or migration-api (packages in Azure Blob "
       "imported by SharePoint; docs/migration-api.md)", commands=("migrate", "demo"),
       api=("migrate",)),
    _o("migration_storage", "migrate", Kind(), "",
       "--via migration-api: a connection string to your own Azure Storage account (default: "
       "containers SharePoint provides)", commands=("migrate",), api=("migrate",), flag=None,
       secret=True),
    _o("migration_queue", "migrate", Switch(), False,
       "--via migration-api: also read the job events from an Azure queue (Microsoft retires "
       "queues in 2026)", commands=("migrate",), api=("migrate",)),
    _o("user_map", "migrate", Location(metavar="FILE"), None,
       "--via migration-api: CSV source,upn mapping source owners to authors ('*' for the rest)",
       commands=("migrate",), api=("migrate",)),
    _o("package_files", "migrate", Integer(minimum=1, maximum=10_000), 250,
       "--via migration-api: files per package at most", commands=("migrate",),
       api=("migrate",)),
    _o("package_size", "migrate", Size(below=16 * 1024 * MIB), 250 * MIB,
       "--via migration-api: bytes per package at most (a larger file goes alone)",
       commands=("migrate",), api=("migrate",)),
    _o("archive_small_files", "migrate", Switch(), False,
       "--via migration-api: pack files under 100 KB into zip archives (ArchivedFiles.xml; two "
       "of 10 MB per package): far fewer blobs and requests", commands=("migrate",),
       api=("migrate",)),
    _o("migration_poll", "migrate", Number(positive=True), 15.0,
       "--via migration-api: time between progress checks of a job (Microsoft advises about a "
       "minute)", commands=("migrate",), api=("migrate",)),
    # job files
    _o("jobs", "jobs", Location(metavar="FILE"), None,
       "an SPMT / Migration Manager CSV or JSON job file (migrate: run every row; status: "
       "only its jobs; provision: its OneDrive targets)",
       commands=("migrate", "status", "provision")),
    _o("map_source", "jobs", Texts(metavar="WIN=LOCAL"), (),
       "map a Windows source prefix to a local folder, e.g. '\\\\fs01\\dept=/mnt/dept' "
       "(repeatable; longest prefix wins; case-insensitive)", commands=("migrate",)),
    _o("strict", "jobs", Switch(), False, "refuse the whole job file when any row is bad",
       commands=("migrate",)),
    _o("max_parallel_jobs", "jobs", Integer(minimum=1), 4,
       "jobs running at once (1 = one after another)", commands=("migrate",)),
    _o("provision", "jobs", Switch(), False,
       "create missing OneDrive targets first; each job starts when its OneDrive exists",
       commands=("migrate",)),
    # provisioning
    _o("users", "provision", Location(metavar="FILE"), None,
       "CSV with a upn (or email) column", commands=("provision",)),
    _o("no_wait", "provision", Switch(), False, "ask, check once, do not wait",
       commands=("provision",), negatable=False),
    _o("provision_timeout", "provision", Number(), 600.0,
       "how long to wait for requested OneDrives", commands=("migrate", "provision")),
    _o("poll_interval", "provision", Number(positive=True), 15.0,
       "time between checks for requested OneDrives", commands=("migrate", "provision")),
    _o("sharepoint_tenant", "provision", Kind(metavar="NAME"), "",
       "the tenant's SharePoint name, contoso for contoso-admin.sharepoint.com",
       commands=("migrate", "provision"),
       default_text="from the targets, or a NAME.onmicrosoft.com tenant"),
    # scan
    _o("inventory", "scan", Switch(), False,
       "also write ScanInventory.csv (every item, not only findings) and FolderSummary.csv "
       "(files, bytes and findings per folder) into the report folder",
       commands=("scan",), api=("scan",)),
    _o("fail_on_findings", "scan", Switch(), False,
       "exit 1 when any item has a finding (for CI)", commands=("scan",)),
    # status and report
    _o("job", "status", Integer(metavar="ID", minimum=1), None,
       "only this job (report: the job, needed when there are several)",
       commands=("status", "report")),
    _o("round", "status", Integer(minimum=1), None, "the round number",
       commands=("report",), default_text="the last"),
    _o("all_rounds", "status", Switch(), False,
       "every round of the job, each into round-N/, and the job across them (JobReport.csv: "
       "what is at the target and what is not and why; JobRounds.csv: a row per round)",
       commands=("report",)),
    _o("out", "status", Location(metavar="DIR"), None, "where to write the reports",
       commands=("report",), required=True),
    # cluster
    _o("broker", "cluster", Url(), None,
       "the broker of a cluster, redis://[:PASSWORD@]HOST:PORT/DB (migrate: hand the jobs to "
       "the workers instead of running them here; needs a postgresql:// state)",
       commands=("migrate", "worker")),
    _o("queue", "cluster", Kind(metavar="GROUP"), "default",
       "a group of workers (worker: the queue it takes units from; migrate: where jobs go "
       "unless a job-file row names its Agent Group)", commands=("migrate", "worker")),
    _o("unit_files", "cluster", Integer(minimum=1), 10_000,
       "files a unit of work takes on before the folders it has not reached become units of "
       "their own", commands=("migrate",)),
    _o("unit_mb", "cluster", Integer(metavar="MB", minimum=1), 20_480,
       "megabytes a unit of work takes on, likewise", commands=("migrate",)),
    _o("lease_ttl", "cluster", Number(positive=True), 60.0,
       "how long a worker's lease on a unit outlives its last heartbeat; then another worker "
       "takes the unit over", commands=("worker",)),
    _o("heartbeat", "cluster", Number(positive=True), 10.0,
       "time between a worker's heartbeats", commands=("worker",)),
    _o("visibility_timeout", "cluster", Number(positive=True), 14_400.0,
       "time before Redis hands an unacknowledged unit to another worker (longer than any "
       "unit; the leases decide who works on it)", commands=("worker",)),
    # the dashboard
    _o("dashboard_host", "dashboard", Kind(metavar="ADDRESS"), "127.0.0.1",
       "address to listen on; any but a loopback address needs the token",
       commands=("dashboard",), flag="--host"),
    _o("dashboard_port", "dashboard", Integer(minimum=0, maximum=65535), 8765,
       "TCP port (0: a free one)", commands=("dashboard",), flag="--port"),
    _o("dashboard_token", "dashboard", Kind(), "",
       "the token a dashboard listening beyond this machine asks for",
       commands=("dashboard",), flag=None, key="dashboard.token", secret=True,
       default_text="a new random one, printed at start"),
    _o("dashboard", "dashboard", Integer(metavar="PORT", minimum=0, maximum=65535), None,
       "serve the dashboard on 127.0.0.1:PORT beside the run (0: a free port; the address "
       "is printed)", commands=("migrate",), key="dashboard.beside_run"),
    # the emulator command
    _emulator("data", Location(metavar="DIR"), None, "data folder", required=True),
    _emulator("port", Integer(minimum=0, maximum=65535), 0, "TCP port",
              default_text="a free one"),
    _emulator("host", Kind(metavar="ADDRESS"), "127.0.0.1", "address to listen on"),
    _emulator("tenant", Kind(metavar="NAME"), "contoso", "tenant name"),
    _emulator("users", Location(metavar="FILE"), None,
              "CSV (upn,display_name,licensed,onedrive) or JSON list of users to create",
              default_text="a sample tenant"),
    _emulator("latency_ms", Number(metavar="MS"), 0.0, "added to every request"),
    _emulator("bandwidth", Integer(metavar="BYTES_PER_S", minimum=0), 0,
              "tenant-wide body cap (0: none)"),
    _emulator("ru_per_minute", Integer(minimum=0), 0,
              "resource units per app per minute (0: no throttling)"),
    _emulator("error_rate", Number(metavar="P", maximum=1.0), 0.0, "probability of a 500/503"),
    _emulator("drop_rate", Number(metavar="P", maximum=1.0), 0.0,
              "probability of a dropped connection"),
    _emulator("fault_seed", Integer(minimum=0), None,
              "seed of the random faults, to replay a run",
              default_text="a random one, shown by GET /_emulator/faults"),
    _emulator("session_lifetime", Number(positive=True), 900.0,
              "upload-session lifetime after its last fragment"),
    _emulator("provisioning_delay", Number(), 0.0, "time before a requested OneDrive exists"),
    _emulator("office_enrichment", Switch(), True,
              "site libraries rewrite the Office files committed to them, as SharePoint does "
              "(off: stored as sent)"),
    _emulator("replace_not_found_rate", Number(metavar="P", maximum=1.0),
              0.2,  # settings.DEFAULT_REPLACE_NOT_FOUND_RATE (a test keeps them equal)
              "probability that replacing or deleting an Office or web file in a site library "
              "answers 404 itemNotFound, as SharePoint may"),
    _emulator("never_answer", Kind(metavar="SELECTORS"), "",
              "requests accepted and never answered (kind:K, host:H, path:P, signin, "
              "upload-url, all; comma-separated)", default_text="none"),
    _emulator("migration_api", Choice(choices=("lazy", "start", "off"), metavar="WHEN"), "lazy",
              "the Migration API service: Azurite starts when first needed (lazy), at "
              "start-up, or never"),
    # the demo command
    _o("demo_dir", "demo", Location(metavar="DIR"), "sharelift-demo", "working folder",
       commands=("demo",), flag="--dir"),
)  # fmt: skip

OPTIONS: dict[str, Option] = {option.name: option for option in _TABLE}


def options_for(command: str) -> list[Option]:
    """The options a command takes, in table order."""
    return [o for o in _TABLE if command in o.commands]


def default(name: str) -> Any:
    """The default of an option, as the library uses it (for code that must agree with the
    table: `EngineConfig`'s fields)."""
    option = OPTIONS[name]
    return option.load(option.default)


def check(**values: Any) -> None:
    """Check values against their options; raises OptionError for the first invalid one."""
    for name, value in values.items():
        OPTIONS[name].load(value)


def keyword_options(function: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every keyword option of the library's `function` (`scan`, `migrate`): the values given,
    checked and converted, and the defaults for the rest. Raises TypeError for a keyword the
    function does not take (as Python does) and OptionError for a bad value."""
    accepted = {o.name: o for o in _TABLE if function in o.api}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    return {name: option.load(given.get(name, option.default)) for name, option in accepted.items()}
