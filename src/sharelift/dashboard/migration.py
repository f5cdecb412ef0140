"""The Migration API section: packages and the service's import jobs by state, the bytes
packaged, uploaded and imported, a job's packages and the errors and warnings the service
reported, with their messages.

The figures come from the reading's one query (`StateStore.package_counts`: the packages of
every job's last round and those still open, counted by job, status and service job state).
A job's packages and events are read on demand: when its page is loaded, and while it is open
only when the job's figures changed (`Live.on_demand`: one read for every page of that job).
The page lists the last `LIMIT` packages and the first `LIMIT` events matching its filter.

Nothing secret is shown: a package's container and queue URIs (SAS) and its key file are not
read into a page, and every text the service wrote passes through `text.shown`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

from sharelift.dashboard import text
from sharelift.dashboard.text import state_badge
from sharelift.state import (
    MigrationPackageRecord,
    PackageCount,
    PackageEventRecord,
    PackageStatus,
    ServiceJobState,
    StateStore,
)

LIMIT = 500
"""Packages, and events, a page lists at most."""
PACKAGE_STATES = tuple(s.value for s in PackageStatus)
JOB_STATES = (
    ServiceJobState.QUEUED.value,
    ServiceJobState.POSTPONED.value,
    ServiceJobState.PROCESSING.value,
    ServiceJobState.DONE.value,
    ServiceJobState.FAILED.value,
)
"""The service's job states, in the order a job goes through them."""
EVENT_NAMES = {"JobError": "error", "JobWarning": "warning", "JobFatalError": "fatal error"}


@dataclass(frozen=True)
class Figures:
    """The Migration API figures of some jobs (equal figures: nothing changed)."""

    by_status: tuple[tuple[str, int], ...]
    by_job_state: tuple[tuple[str, int], ...]
    packages: int
    files: int
    bytes: int
    bytes_uploaded: int
    files_imported: int
    bytes_imported: int
    errors: int
    warnings: int
    last_event_at: str

    def count(self, state: str) -> int:
        """Packages in this status, or service jobs in this state."""
        return dict(self.by_status).get(state, 0) or dict(self.by_job_state).get(state, 0)


def figures(counts: Iterable[PackageCount], job_id: int | None = None) -> Figures | None:
    """The figures of one job's packages (or every job's); None when there are none."""
    chosen = [c for c in counts if job_id is None or c.job_id == job_id]
    if not chosen:
        return None
    by_status = dict.fromkeys(PACKAGE_STATES, 0)
    by_job_state = dict.fromkeys(JOB_STATES, 0)
    for c in chosen:
        by_status[c.status.value] += c.packages
        if c.job_state is not None:
            by_job_state[c.job_state.value] += c.packages
    return Figures(
        by_status=tuple(by_status.items()),
        by_job_state=tuple(by_job_state.items()),
        packages=sum(c.packages for c in chosen),
        files=sum(c.files for c in chosen),
        bytes=sum(c.bytes for c in chosen),
        bytes_uploaded=sum(c.bytes_uploaded for c in chosen),
        files_imported=sum(c.files_imported for c in chosen),
        bytes_imported=sum(c.bytes_imported for c in chosen),
        errors=sum(c.errors for c in chosen),
        warnings=sum(c.warnings for c in chosen),
        last_event_at=max(c.last_event_at for c in chosen),
    )


# --- a job's packages and events, on demand ----------------------------------------------------


@dataclass(frozen=True)
class Event:
    """An error or warning of the service, as shown."""

    package: str
    kind: str
    at: str
    code: str
    url: str
    message: str

    def matches(self, query: str) -> bool:
        """True when `query` (lower case) is in the package, kind, code, object or message."""
        return not query or any(
            query in f.lower() for f in (self.package, self.kind, self.code, self.url, self.message)
        )


@dataclass(frozen=True)
class PackageDetails:
    packages: list[MigrationPackageRecord]
    """The job's last LIMIT packages, newest first."""
    events: list[Event] = field(default_factory=list)
    """The first LIMIT kept events matching the filter."""
    events_total: int = 0
    """How many kept events match the filter."""
    by_kind: dict[str, int] = field(default_factory=dict)
    """Of those, how many of each kind (error, warning, fatal error)."""


def package_details(store: StateStore, job_id: int, query: str = "") -> PackageDetails:
    """A job's packages and the service's events matching `query` (case-insensitive)."""
    packages = store.migration_packages(job_id, last=LIMIT)
    names = {p.id: p.package_id for p in packages}
    needle = query.strip().lower()
    events: list[Event] = []
    by_kind: dict[str, int] = {}
    for record in store.package_events(job_id):
        found = _event(record, names)
        if found.matches(needle):
            by_kind[found.kind] = by_kind.get(found.kind, 0) + 1
            if len(events) < LIMIT:
                events.append(found)
    return PackageDetails(packages[::-1], events, sum(by_kind.values()), by_kind)


def _event(record: PackageEventRecord, names: dict[int, str]) -> Event:
    return Event(
        package=names.get(record.package_row, f"#{record.package_row}"),
        kind=EVENT_NAMES.get(record.event, record.event),
        at=record.at,
        code="" if record.code in ("", "0") else record.code,
        url=text.shown(record.url),
        message=text.shown(record.message),
    )


# --- fragments ---------------------------------------------------------------------------------


def _counts(states: tuple[tuple[str, int], ...], attribute: str, every: bool) -> str:
    items = "".join(
        f'<li data-{attribute}="{escape(state)}">{state_badge(state)} <strong>{n:,}</strong></li>'
        for state, n in states
        if every or n
    )
    return f'<ul class="states">{items}</ul>'


def _amount(name: str, n: int, of: int) -> str:
    share = min(n / of, 1.0) if of > 0 else 0.0
    return (
        f'<p><strong data-bytes="{name}" data-value="{n}">{escape(text.size(n))}</strong> '
        f"{name}</p>"
        f'<progress max="1" value="{share:.4f}" aria-label="bytes {name} of those packaged">'
        "</progress>"
    )


def cards(figs: Figures) -> str:
    """The section's figures as cards (packages and service jobs by state, bytes, problems)."""
    return (
        '<div class="cards wide">'
        '<div class="card"><h3>Packages by state</h3>'
        f"{_counts(figs.by_status, 'package-state', every=False)}</div>"
        '<div class="card"><h3>Service jobs by state</h3>'
        f"{_counts(figs.by_job_state, 'job-state', every=True)}</div>"
        '<div class="card"><h3>Bytes</h3>'
        f'<p><strong data-bytes="packaged" data-value="{figs.bytes}">'
        f"{escape(text.size(figs.bytes))}</strong> packaged "
        f"<small>({figs.files:,} files in {figs.packages:,} packages)</small></p>"
        f"{_amount('uploaded', figs.bytes_uploaded, figs.bytes)}"
        f"{_amount('imported', figs.bytes_imported, figs.bytes)}"
        f"<p><small>{figs.files_imported:,} files imported, as the service counts</small></p>"
        "</div>"
        '<div class="card"><h3>Reported by the service</h3>'
        f'<p><strong data-problems="errors">{figs.errors:,}</strong> errors</p>'
        f'<p><strong data-problems="warnings">{figs.warnings:,}</strong> warnings</p></div>'
        "</div>"
    )


def package_rows(details: PackageDetails) -> str:
    """A job's packages as table rows, newest first."""
    if not details.packages:
        return '<tr><td colspan="8">No packages yet.</td></tr>'
    rows = []
    for p in details.packages:
        service = state_badge(p.job_state.value) if p.job_state is not None else ""
        last = (
            f'{escape(p.last_event)} <small><time datetime="{escape(p.last_event_at)}">'
            f"{escape(text.when(p.last_event_at))}</time></small>"
            if p.last_event
            else ""
        )
        rows.append(
            f'<tr data-package="{escape(p.package_id)}">'
            f"<td><code>{escape(p.package_id)}</code></td>"
            f'<td class="num">{p.files:,}</td><td class="num">{escape(text.size(p.bytes))}</td>'
            f"<td>{state_badge(p.status.value)}</td><td>{service}</td>"
            f"<td><code>{escape(p.migration_job_id or '')}</code></td><td>{last}</td>"
            f'<td class="num">{p.errors:,} / {p.warnings:,}</td></tr>'
        )
    return "".join(rows)


def event_rows(details: PackageDetails) -> str:
    """The service's errors and warnings (those matching the filter) as table rows."""
    if not details.events:
        return '<tr><td colspan="6">No errors or warnings.</td></tr>'
    return "".join(
        f'<tr data-event="{escape(e.kind)}"><td>{escape(text.when(e.at))}</td>'
        f"<td>{escape(e.kind)}</td><td><code>{escape(e.package[:8])}</code></td>"
        f'<td><code>{escape(e.code)}</code></td><td class="path">{escape(e.url)}</td>'
        f"<td>{escape(e.message)}</td></tr>"
        for e in details.events
    )


def package_count(details: PackageDetails) -> str:
    listed = len(details.packages)
    if listed >= LIMIT:
        return f"The last {listed:,} packages are listed."
    return f"{listed:,} package{'s' if listed != 1 else ''}."


def event_count(details: PackageDetails, query: str) -> str:
    """`3 events: 1 error, 2 warnings.` (of those matching the filter, and how many are
    listed)."""
    total, listed = details.events_total, len(details.events)
    kinds = ", ".join(
        f"{n:,} {kind}{'s' if n != 1 else ''}"
        for kind in EVENT_NAMES.values()
        if (n := details.by_kind.get(kind, 0))
    )
    return (
        f"{total:,} event{'s' if total != 1 else ''}"
        + (" matching the filter" if query else "")
        + (f": {kinds}" if kinds else "")
        + (f"; the first {listed:,} are listed" if total > listed else "")
        + "."
    )
