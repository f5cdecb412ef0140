"""The parts of the pages that change while a run goes on, rendered from one `Reading`.

The first page load and every live update use the same functions: `overview_update` and
`job_update` give the texts, HTML fragments and progress values the page's script puts in
place (by `data-live` name), and the page templates call the same fragment functions, so a page
that never runs its script shows what an updated one shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

from sharelift.dashboard import migration, text
from sharelift.dashboard.charts import svg
from sharelift.dashboard.migration import PackageDetails
from sharelift.dashboard.readings import JOB_STATES, JobView, Reading
from sharelift.dashboard.text import state_badge
from sharelift.dashboard.workers import UNIT_STATES


@dataclass
class Update:
    """What changes on a page: `text` (textContent), `html` (trusted fragments, escaped
    here), `value` (a <progress>'s value) and `shown` (False: hidden), each by `data-live`
    name."""

    text: dict[str, str] = field(default_factory=dict)
    html: dict[str, str] = field(default_factory=dict)
    value: dict[str, float] = field(default_factory=dict)
    shown: dict[str, bool] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"text": self.text, "html": self.html, "value": self.value, "shown": self.shown}


def _e(value: str) -> str:
    return escape(text.shown(value))


def states_list(reading: Reading) -> str:
    if not reading.jobs:
        return "<p>No jobs in this state store yet.</p>"
    items = "".join(
        f"<li>{state_badge(state)} <strong>{reading.by_state[state]:,}</strong></li>"
        for state in JOB_STATES
        if state in reading.by_state
    )
    return f'<ul class="states">{items}</ul>'


def job_label(job: JobView) -> str:
    """A job's name as shown: a job file's row as `FILE#ROW` without the file's folder."""
    name = job.name.replace("\\", "/").rsplit("/", 1)[-1] if "#" in job.name else job.name
    return name or f"job {job.id}"


def job_rows(reading: Reading, now: datetime) -> str:
    """The jobs table's rows; each cell has a `data-sort` value for the page's sorting."""
    if not reading.jobs:
        return '<tr><td colspan="8">No jobs yet.</td></tr>'
    rows = []
    for job in reading.jobs:
        rows.append(
            f'<tr data-state="{escape(job.state)}">'
            f'<td data-sort="{job.id}"><a href="/jobs/{job.id}">{_e(job_label(job))}</a></td>'
            f'<td data-sort="{_e(job.source)}" class="path">{_e(job.source)} '
            f'<span aria-hidden="true">→</span><span class="visually-hidden">to</span> '
            f"{_e(job.target)}</td>"
            f'<td data-sort="{JOB_STATES.index(job.state) if job.state in JOB_STATES else 99}">'
            f"{state_badge(job.state)}</td>"
            f'<td data-sort="{job.files_percent:.3f}" class="num">'
            f"{text.percent(job.files_percent)}"
            f" <small>{job.files_settled:,} of {job.files_total:,}</small></td>"
            f'<td data-sort="{job.bytes_percent:.3f}" class="num">'
            f"{text.percent(job.bytes_percent)}"
            f" <small>{escape(text.size(job.bytes_done))} of "
            f"{escape(text.size(job.bytes_total))}</small></td>"
            f'<td data-sort="{job.files_failed}" class="num">{job.files_failed:,}</td>'
            f'<td data-sort="{job.round_number}" class="num">{job.round_number or ""}</td>'
            f'<td data-sort="{escape(job.last_activity)}">'
            f'<time datetime="{escape(job.last_activity)}">'
            f"{escape(text.ago(job.last_activity, now))}</time></td>"
            "</tr>"
        )
    return "".join(rows)


def worker_rows(reading: Reading, now: datetime) -> str:
    """Which machine runs which unit (a cluster's workers) or job (a round on one machine),
    and when it last reported; a heartbeat gone stale is marked."""
    workers = reading.workers
    if not workers:
        return '<tr><td colspan="6">Nothing is running.</td></tr>'
    rows = []
    for w in workers:
        job = reading.job(w.job_id) if w.job_id is not None else None
        doing = ""
        if job is not None:
            doing = f'<a href="/jobs/{job.id}">{_e(job_label(job))}</a> '
            if w.unit is not None:
                doing += (
                    f"<small>unit {w.unit.id}: {escape(w.unit.kind)} "
                    f'<span class="path">{_e(w.unit.path)}</span></small>'
                )
            else:
                doing += f"<small>round {w.round_number}</small>"
        elif w.unit is not None:
            doing = f"unit {w.unit.id}: {escape(w.unit.kind)}"
        if w.heartbeat_age is not None:
            age = f"{text.duration(w.heartbeat_age)} ago"
            age_sort = f"{w.heartbeat_age:.1f}"
        else:
            age, age_sort = text.ago(w.heartbeat_at, now), ""
        stale = ' <strong class="stale">stale</strong>' if w.stale else ""
        rows.append(
            f'<tr data-worker="{_e(w.process)}" data-state="{escape(w.state)}"'
            f' data-unit="{w.unit.id if w.unit is not None else ""}"'
            f' data-age="{age_sort}">'
            f"<td>{_e(w.machine)}</td><td>{_e(w.process)}</td>"
            f"<td>{escape(', '.join(w.queues))}</td><td>{doing}</td>"
            f"<td>{state_badge(w.state)}</td>"
            f'<td><time datetime="{escape(w.heartbeat_at)}">{escape(age)}</time>{stale}</td>'
            "</tr>"
        )
    return "".join(rows)


def units_list(reading: Reading) -> str:
    """The units of work of a cluster by status (each job's last round), or a line saying
    that every job runs on one machine."""
    units = reading.cluster.units
    if not units:
        return "<p>None: no job here runs on a cluster.</p>"
    items = "".join(
        f'<li data-units="{escape(status)}">{state_badge(status)} <strong>{n:,}</strong></li>'
        for status in UNIT_STATES
        if (n := units.get(status, 0))
    )
    return f'<ul class="states">{items}</ul>'


def overview_update(reading: Reading) -> Update:
    now = datetime.now(UTC)
    up = Update()
    up.text["updated"] = f"updated {text.when(reading.taken_at)} UTC"
    up.text["files"] = f"{reading.files_settled:,} of {reading.files_total:,}"
    up.text["files-done"] = f"{reading.files_done:,} migrated"
    up.value["files"] = _share(reading.files_settled, reading.files_total)
    up.text["bytes"] = f"{text.size(reading.bytes_done)} of {text.size(reading.bytes_total)}"
    up.value["bytes"] = _share(reading.bytes_done, reading.bytes_total)
    up.text["rate"] = text.rate(reading.rate_now)
    up.text["files-rate"] = f"{reading.files_rate_now:,.1f} files/s"
    up.text["eta"] = text.duration(reading.eta_seconds)
    up.text["failures"] = f"{reading.files_failed:,}"
    up.text["throttled"] = f"{reading.throttled:,}"
    up.text["throttle-wait"] = text.duration(reading.throttle_wait)
    up.html["states"] = states_list(reading)
    up.html["chart"] = svg(reading.chart)
    up.html["jobs"] = job_rows(reading, now)
    up.html["workers"] = worker_rows(reading, now)
    up.html["units"] = units_list(reading)
    figs = migration.figures(reading.packages)
    up.shown["migration-api-section"] = figs is not None
    up.html["migration-api"] = migration.cards(figs) if figs is not None else ""
    return up


def job_update(
    reading: Reading, job_id: int, packages: PackageDetails | None = None, query: str = ""
) -> Update:
    """The live figures of one job's page (empty when the job is unknown); with `packages`
    (read on demand, `query` their events' filter), its packages and the service's events."""
    up = Update()
    job = reading.job(job_id)
    if job is None:
        return up
    figs = migration.figures(reading.packages, job_id)
    up.shown["job-migration-api-section"] = figs is not None or bool(packages and packages.packages)
    up.html["job-migration-api"] = migration.cards(figs) if figs is not None else ""
    if packages is not None:
        up.text["job-package-count"] = migration.package_count(packages)
        up.html["job-packages"] = migration.package_rows(packages)
        up.text["job-event-count"] = migration.event_count(packages, query)
        up.html["job-events"] = migration.event_rows(packages)
    up.text["updated"] = f"updated {text.when(reading.taken_at)} UTC"
    up.html["job-state"] = state_badge(job.state)
    up.text["job-files"] = (
        f"{text.percent(job.files_percent)}: {job.files_settled:,} of {job.files_total:,} "
        f"({job.files_done:,} migrated)"
    )
    up.value["job-files"] = job.files_percent / 100
    up.text["job-bytes"] = (
        f"{text.percent(job.bytes_percent)}: {text.size(job.bytes_done)} of "
        f"{text.size(job.bytes_total)}"
    )
    up.value["job-bytes"] = job.bytes_percent / 100
    up.text["job-failed"] = f"{job.files_failed:,}"
    up.text["job-throttled"] = (
        f"{job.throttled:,} answers, {text.duration(job.throttle_wait)} waited"
    )
    up.text["job-activity"] = f"{text.when(job.last_activity)} UTC" if job.last_activity else ""
    return up


def _share(done: int, total: int) -> float:
    return min(done / total, 1.0) if total > 0 else 0.0
