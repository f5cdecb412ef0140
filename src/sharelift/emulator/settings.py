"""Every setting of the emulator in one place.

`EmulatorSettings` is built from command-line flags (`sharelift emulator …`) or by tests. The
fault fields may change while the emulator runs (through the admin endpoint), so readers must
fetch them from `app.state.settings` at request time rather than copy them at start-up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024
DEFAULT_REPLACE_NOT_FOUND_RATE = 0.2
"""How often SharePoint refuses to replace or delete an Office or web file (our choice: the
reports say "may", none says how often)."""
SELECTOR_KINDS = ("kind", "host", "path")
"""`never_answer` selectors of the form `name:value`; `signin`, `upload-url` and `all` stand
alone."""


def check_selectors(text: str) -> str:
    """`text` as a `never_answer` value, normalised; ValueError naming a bad selector."""
    selectors = [part.strip() for part in text.split(",") if part.strip()]
    for selector in selectors:
        name, colon, value = selector.partition(":")
        if colon and name in SELECTOR_KINDS and value:
            continue
        if not colon and selector in ("signin", "upload-url", "all"):
            continue
        raise ValueError(
            f"never_answer: {selector!r} is not kind:KIND, host:HOST, path:PATTERN, signin, "
            "upload-url or all"
        )
    return ",".join(selectors)


def fresh_seed() -> int:
    """A seed for the fault draws when none is given (reported, so a run can be replayed)."""
    return random.SystemRandom().randrange(2**32)


@dataclass
class Faults:
    """Faults on demand. All off by default, except `replace_not_found_rate`, a behaviour of
    SharePoint itself.

    The random faults (`error_rate`, `drop_rate`, `replace_not_found_rate`) are drawn from one
    sequence started by `seed`: the same seed gives the same draws, so a run can be replayed.
    Requests that run concurrently may still meet those draws in a different order.
    """

    SERVICE_BEHAVIOURS = ("replace_not_found_rate",)
    """Faults the service shows unasked: a reset puts them back to their start values, not off."""

    latency_ms: float = 0.0
    """Added before every request is handled (inner $batch requests excepted)."""
    bandwidth_bps: int = 0
    """Cap on request+response body bytes per second across the tenant; 0 = unlimited."""
    ru_per_minute: int = 0
    """Resource-unit budget per app per minute (Microsoft's published costs); 0 = unlimited."""
    error_rate: float = 0.0
    """Probability that a Graph request fails with 500 or 503 before it is handled."""
    drop_rate: float = 0.0
    """Probability that the connection is dropped without an answer."""
    ru_window_s: float = 60.0
    """Length of the resource-unit window (Microsoft's is one minute; tests shorten it)."""
    ratelimit_from: float = 0.8
    """Share of the budget used from which answers carry RateLimit-* headers (Microsoft's 0.8,
    for app-only calls); above 1, none are sent, as for delegated calls."""
    migration_bytes_per_s: float = 0.0
    """Migration API import rate cap in bytes per second, per import thread; 0 = unlimited."""
    migration_files_per_s: float = 0.0
    """Migration API import rate cap in files per second, per import thread; 0 = unlimited."""
    migration_postpone_s: float = 0.0
    """When positive, each new migration job is postponed once (JobPostponed) for this long."""
    migration_throttle_rate: float = 0.0
    """Probability that a Migration API REST call is refused with `migration_throttle_status`
    and `Retry-After: 1`."""
    migration_throttle_status: int = 429
    """429 or 503: the status of a throttled Migration API REST call."""
    migration_fail_after: int = 0
    """When positive, a migration job fails (JobFatalError) after importing this many files."""
    replace_not_found_rate: float = DEFAULT_REPLACE_NOT_FOUND_RATE
    """Probability that replacing or deleting an Office or web file in a site library answers
    404 itemNotFound although the file is there (OneDrive/onedrive-api-docs#1068); moving or
    renaming it is never refused. See `faults.replace_refusal`."""
    never_answer: str = ""
    """Requests that are accepted and never answered: a comma-separated list of selectors
    (`kind:upload`, `host:login.microsoftonline.com`, `path:/v1.0/drives/*`, `signin`,
    `upload-url`, `all`); "" for none. See `faults.never_answer`."""
    seed: int = field(default_factory=fresh_seed)
    """Starts the sequence of random draws; setting it, even to its current value, restarts
    the sequence. A random one unless given."""

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def update(self, changes: dict[str, object]) -> None:
        """Apply `changes` (field name -> value), checking names and types; raises ValueError."""
        for name, value in changes.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault: {name}")
            current = getattr(self, name)
            if isinstance(current, str):
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be text")
                setattr(self, name, check_selectors(value))
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if name == "seed" and not isinstance(value, int):
                raise ValueError("seed must be an integer")
            if value < 0 or (name.endswith("_rate") and value > 1):
                raise ValueError(f"{name} out of range: {value}")
            if name == "migration_throttle_status" and value not in (429, 503):
                raise ValueError("migration_throttle_status must be 429 or 503")
            setattr(self, name, type(current)(value))
            if name == "seed":
                self._random.seed(self.seed)

    def chance(self, rate: float) -> bool:
        """The next draw: True with probability `rate` (no draw is taken when `rate` is 0)."""
        return rate > 0 and self._random.random() < rate


@dataclass
class EmulatorSettings:
    """How one emulator instance runs. `data_dir` holds everything it persists."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; the chosen one is written to emulator.json."""
    tenant: str = "contoso"
    users_file: Path | None = None
    """CSV or JSON of users to create on first start; None = a built-in sample tenant."""
    upload_session_lifetime_s: float = 15 * 60
    """An upload session expires this long after its last fragment (Graph: ~15 minutes)."""
    simple_upload_limit: int = 250 * MIB
    """Largest body accepted by PUT …/content (the current Graph page says 250 MB)."""
    provisioning_delay_s: float = 0.0
    """How long CreatePersonalSiteEnqueueBulk takes before a OneDrive exists."""
    token_lifetime_s: int = 3600
    """Lifetime of issued access tokens (Entra ID: 60-90 minutes)."""
    device_code_lifetime_s: float = 900
    """How long a device code waits for approval (Entra ID: 15 minutes)."""
    device_code_interval_s: int = 5
    """The polling interval announced with a device code (tests use 1)."""
    migration_api: str = "lazy"
    """The Migration API service: "lazy" starts Azurite when it is first needed, "start" at
    start-up, "off" answers its REST calls 404."""
    migration_queue_limit: int = 5000
    """Queued migration jobs a site collection may have (sp-dev-docs: keep under 5,000)."""
    migration_import_threads: int = 2
    """Jobs imported at once."""
    app_only_secret_for_sharepoint: bool = False
    """Whether SharePoint REST accepts app-only tokens got with a client secret. SharePoint
    Online refuses them ("Unsupported app only token."); Graph accepts both."""
    office_enrichment: bool = True
    """Whether site libraries rewrite the Office files committed to them, as SharePoint does
    (see `sharelift.emulator.enrichment`); OneDrive drives never do. May change at runtime."""
    refuse_bearer_on_upload_urls: bool = False
    """Answer 401 to a request to an upload URL that carries an Authorization header, as
    Graph's page says may happen; off: ignored (and counted), as SharePoint Online does."""
    request_log: bool = True
    """Write data_dir/requests.jsonl."""
    faults: Faults = field(default_factory=Faults)
