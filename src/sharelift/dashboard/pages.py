"""The dashboard's pages as HTML: the overview, a job's page, and the pages that say no.

Every page is whole without its script (the figures of the reading it was made from); the
script (`static/dashboard.js`) then follows the server-sent events and puts each update in
place, sorts and filters tables. No inline script or style: the Content-Security-Policy allows
only the server's own files. Text from the store is escaped, and passed through `text.shown`.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from sharelift.dashboard import text
from sharelift.dashboard.details import LIMIT, JobDetails
from sharelift.dashboard.fragments import Update, job_label, job_update, overview_update
from sharelift.dashboard.migration import PackageDetails
from sharelift.dashboard.readings import JOB_STATES, Reading
from sharelift.dashboard.text import state_badge
from sharelift.state import RoundRecord

REPORT_FILES = (
    "report.html",
    "ItemReport.csv",
    "FailureSummary.csv",
    "SummaryReport.csv",
    "JobReport.csv",
    "summary.json",
)
"""The files of a round's report folder the dashboard links to and serves; nothing else."""


def _e(value: str) -> str:
    return escape(text.shown(value))


def layout(title: str, body: str, *, events: str, status: str = "", reload: bool = False) -> str:
    """A whole page. `events` is the query of its event stream ("" for a page without);
    `reload`: the page is loaded again at the first update (it has nothing to update)."""
    stream = f' data-events="/events?{escape(events)}"' if events else ""
    stream += " data-reload" if reload else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · sharelift</title>"
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script type="module" src="/static/dashboard.js"></script>'
        f"</head><body{stream}>"
        '<a class="skip" href="#main">Skip to the content</a>'
        '<header class="top"><p class="brand"><a href="/">sharelift dashboard</a></p>'
        f'<p class="status"><span data-live="updated">{escape(status)}</span> '
        '<span class="connection" data-connection role="status" aria-live="polite"></span></p>'
        f'</header><main id="main">{body}</main></body></html>'
    )


def _live_text(up: Update, name: str, tag: str = "span") -> str:
    return f'<{tag} data-live="{name}">{escape(up.text.get(name, ""))}</{tag}>'


def _live_html(up: Update, name: str, tag: str = "div", attrs: str = "") -> str:
    return f'<{tag} data-live="{name}"{attrs}>{up.html.get(name, "")}</{tag}>'


def _section(up: Update, name: str, heading: str, body: str) -> str:
    """A section shown while `up.shown[name]` (and hidden, updated live, until then)."""
    hidden = "" if up.shown.get(f"{name}-section") else " hidden"
    return (
        f'<section aria-labelledby="{name}-h" data-live="{name}-section"{hidden}>'
        f'<h2 id="{name}-h">{escape(heading)}</h2>{body}</section>'
    )


def _progress(up: Update, name: str, label: str) -> str:
    return (
        f'<progress data-live="{name}" max="1" value="{up.value.get(name, 0.0):.4f}" '
        f'aria-label="{escape(label)}"></progress>'
    )


def _card(title: str, content: str) -> str:
    return f'<div class="card"><h3>{escape(title)}</h3>{content}</div>'


def waiting_page(path: str, problem: str) -> str:
    body = (
        "<h1>Waiting for the state store</h1>"
        f"<p>{_e(problem or 'No reading yet.')}</p>"
        f"<p>The dashboard reads <code>{_e(path)}</code>; this page updates by itself once "
        "a run has created it.</p>"
    )
    return layout("waiting", body, events="view=overview", reload=True)


def overview_page(reading: Reading, store_path: str) -> str:
    up = overview_update(reading)
    options = "".join(f'<option value="{escape(s)}">{escape(s)}</option>' for s in JOB_STATES)
    body = (
        "<h1>Migrations</h1>"
        f'<p class="store">State store: <code>{_e(store_path)}</code></p>'
        '<section aria-labelledby="overview-h"><h2 id="overview-h">Overview</h2>'
        '<div class="cards">'
        + _card("Jobs by state", _live_html(up, "states"))
        + _card(
            "Files",
            f"<p>{_live_text(up, 'files', 'strong')} settled</p>"
            + _progress(up, "files", "files settled of the total")
            + f"<p>{_live_text(up, 'files-done')}</p>",
        )
        + _card(
            "Bytes",
            f"<p>{_live_text(up, 'bytes', 'strong')} sent</p>"
            + _progress(up, "bytes", "bytes sent of the total"),
        )
        + _card(
            "Throughput now",
            f"<p>{_live_text(up, 'rate', 'strong')}</p><p>{_live_text(up, 'files-rate')}</p>",
        )
        + _card(
            "Time left (estimate)",
            f"<p>{_live_text(up, 'eta', 'strong')}</p>"
            "<p><small>at the present rate, for what the walks found so far</small></p>",
        )
        + _card("Failed files", f"<p>{_live_text(up, 'failures', 'strong')}</p>")
        + _card("Units of work (cluster)", _live_html(up, "units"))
        + _card(
            "Throttling",
            f"<p>{_live_text(up, 'throttled', 'strong')} answers 429/503</p>"
            f"<p>{_live_text(up, 'throttle-wait')} waited on Retry-After</p>",
        )
        + "</div>"
        '<figure class="chart-box">'
        + _live_html(up, "chart")
        + "<figcaption>Throughput over the run (the last round of every job), per minute; "
        "per hour for a run longer than three hours.</figcaption></figure></section>"
        + _section(
            up,
            "migration-api",
            "Migration API",
            "<p>Packages of the last round of every job (and those still open from earlier "
            "rounds), and the import jobs SharePoint runs for them.</p>"
            + _live_html(up, "migration-api"),
        )
        + '<section aria-labelledby="jobs-h"><h2 id="jobs-h">Jobs</h2>'
        '<div class="filters" data-filters="jobs">'
        '<label for="jobs-filter">Filter</label>'
        '<input id="jobs-filter" type="search" data-filter-text '
        'placeholder="name, source or target">'
        '<label for="jobs-state">State</label>'
        f'<select id="jobs-state" data-filter-state><option value="">any</option>{options}'
        "</select></div>"
        '<table class="sortable" data-table="jobs"><caption class="visually-hidden">'
        "Jobs: select a column heading to sort</caption><thead><tr>"
        + "".join(
            f'<th scope="col" aria-sort="none"><button type="button" data-sort-column="{i}">'
            f"{escape(name)}</button></th>"
            for i, name in enumerate(
                (
                    "Job",
                    "Source → target",
                    "State",
                    "Files",
                    "Bytes",
                    "Failed",
                    "Round",
                    "Last activity",
                )
            )
        )
        + "</tr></thead>"
        + _live_html(up, "jobs", "tbody")
        + "</table></section>"
        '<section aria-labelledby="workers-h"><h2 id="workers-h">Workers</h2>'
        "<p>Which machine runs which unit of work (a cluster's workers) or job (a run on one "
        "machine), and when it last reported. A worker silent for longer than its lease "
        "(--lease-ttl, a minute by default) is stale: another takes its unit over.</p>"
        '<table data-table="workers"><thead><tr><th scope="col">Machine</th>'
        '<th scope="col">Process</th><th scope="col">Queues</th><th scope="col">Running</th>'
        '<th scope="col">State</th><th scope="col">Last heartbeat</th></tr></thead>'
        + _live_html(up, "workers", "tbody")
        + "</table></section>"
    )
    return layout("overview", body, events="view=overview", status=up.text["updated"])


def _round_row(job_id: int, rnd: RoundRecord) -> str:
    links = ""
    if rnd.report_dir:
        links = " ".join(
            f'<a href="/jobs/{job_id}/rounds/{rnd.number}/{name}">{escape(name)}</a>'
            for name in REPORT_FILES
        )
    return (
        f'<tr><td class="num">{rnd.number}</td><td>{state_badge(str(rnd.status))}</td>'
        f"<td>{escape(text.when(rnd.started_at))}</td>"
        f"<td>{escape(text.when(rnd.ended_at or ''))}</td>"
        f'<td class="num">{rnd.files_done:,}</td><td class="num">{rnd.files_skipped:,}</td>'
        f'<td class="num">{rnd.files_failed:,}</td><td class="num">{rnd.files_total:,}</td>'
        f'<td class="num">{escape(text.size(rnd.bytes_done))}</td>'
        f'<td class="num">{rnd.throttled:,}; {escape(text.duration(rnd.throttle_wait))}</td>'
        f'<td class="links">{links}</td></tr>'
    )


def _job_migration(up: Update, job_id: int, query: str, events_query: str) -> str:
    """A job's Migration API section: its figures, its packages, the service's events."""
    keep = f'<input type="hidden" name="q" value="{escape(query)}">' if query else ""
    return _section(
        up,
        "job-migration-api",
        "Migration API",
        "<p>The packages of the job's last round (and those still open), and their import "
        "jobs.</p>"
        + _live_html(up, "job-migration-api")
        + '<h3 id="packages-h">Packages</h3>'
        + f"<p>{_live_text(up, 'job-package-count')}</p>"
        + '<table aria-labelledby="packages-h"><thead><tr><th scope="col">Package</th>'
        '<th scope="col">Files</th><th scope="col">Bytes</th><th scope="col">State</th>'
        '<th scope="col">Service job</th><th scope="col">Service job id</th>'
        '<th scope="col">Last event</th><th scope="col">Errors / warnings</th></tr></thead>'
        + _live_html(up, "job-packages", "tbody")
        + "</table>"
        '<h3 id="service-events-h">Errors and warnings from the service</h3>'
        "<p><small>The store keeps the first hundred errors and the first hundred warnings of "
        "each package with their messages; the figures above count them all.</small></p>"
        f'<form class="filters" method="get" action="/jobs/{job_id}#job-migration-api-h">'
        f"{keep}"
        '<label for="events-filter">Filter</label>'
        f'<input id="events-filter" name="events" type="search" value="{escape(events_query)}" '
        'placeholder="package, code, object or message">'
        '<button type="submit">Filter</button></form>'
        f"<p>{_live_text(up, 'job-event-count')}</p>"
        '<table aria-labelledby="service-events-h"><thead><tr>'
        '<th scope="col">Time (UTC)</th><th scope="col">Kind</th><th scope="col">Package</th>'
        '<th scope="col">Code</th><th scope="col">Object</th><th scope="col">Message</th>'
        "</tr></thead>" + _live_html(up, "job-events", "tbody") + "</table>",
    )


def job_page(
    details: JobDetails,
    reading: Reading | None,
    query: str,
    packages: PackageDetails | None = None,
    events_query: str = "",
) -> str:
    """A job's page; `query` filters its failures, `events_query` the service's events."""
    job = details.job
    up = job_update(reading, job.id, packages, events_query) if reading is not None else Update()
    view = reading.job(job.id) if reading is not None else None
    title = job_label(view) if view is not None else f"job {job.id}"
    rounds = "".join(_round_row(job.id, r) for r in reversed(details.rounds)) or (
        '<tr><td colspan="11">No round yet.</td></tr>'
    )
    csv_link = f"/jobs/{job.id}/failures.csv" + (f"?{urlencode({'q': query})}" if query else "")
    shown_note = (
        f"<p>The first {LIMIT:,} of {details.failures_total:,} are listed; the CSV file has "
        "them all.</p>"
        if details.failures_total > len(details.failures)
        else ""
    )
    failures = (
        "".join(
            f'<tr><td class="path">{escape(f.path)}</td><td>{escape(f.status)}</td>'
            f"<td>{escape(f.category)}</td><td><code>{escape(f.code)}</code></td>"
            f"<td>{escape(f.message)}</td>"
            f'<td class="num">{"" if f.round_number is None else f.round_number}</td>'
            f'<td class="num">{f.attempts}</td></tr>'
            for f in details.failures
        )
        or '<tr><td colspan="7">No failures.</td></tr>'
    )
    renames = (
        "".join(
            f'<tr><td class="path">{escape(r.source)}</td><td class="path">{escape(r.target)}</td>'
            f"<td><code>{escape(r.rule)}</code></td><td>{escape(r.message)}</td></tr>"
            for r in details.renames
        )
        or '<tr><td colspan="4">No renames.</td></tr>'
    )
    more = f"<p>The first {LIMIT:,} are listed.</p>" if details.renames_more else ""
    body = (
        '<nav aria-label="Breadcrumb"><a href="/">All jobs</a></nav>'
        f"<h1>{_e(title)}</h1>"
        f'<p class="path">{_e(job.source)} <span aria-hidden="true">→</span>'
        f'<span class="visually-hidden">to</span> {_e(job.target)}</p>'
        '<section aria-labelledby="now-h"><h2 id="now-h">Now</h2><dl class="facts">'
        f"<dt>State</dt><dd>{_live_html(up, 'job-state', 'span')}</dd>"
        f"<dt>Files</dt><dd>{_progress(up, 'job-files', 'files settled')} "
        f"{_live_text(up, 'job-files')}</dd>"
        f"<dt>Bytes</dt><dd>{_progress(up, 'job-bytes', 'bytes sent')} "
        f"{_live_text(up, 'job-bytes')}</dd>"
        f"<dt>Failed files</dt><dd>{_live_text(up, 'job-failed')}</dd>"
        f"<dt>Throttling</dt><dd>{_live_text(up, 'job-throttled')}</dd>"
        f"<dt>Last activity</dt><dd>{_live_text(up, 'job-activity')}</dd></dl></section>"
        '<section aria-labelledby="rounds-h"><h2 id="rounds-h">Rounds</h2>'
        '<table><thead><tr><th scope="col">Round</th><th scope="col">Status</th>'
        '<th scope="col">Started (UTC)</th><th scope="col">Ended (UTC)</th>'
        '<th scope="col">Migrated</th><th scope="col">Skipped</th><th scope="col">Failed</th>'
        '<th scope="col">Files</th><th scope="col">Sent</th>'
        '<th scope="col">Throttled; waited</th><th scope="col">Reports</th></tr></thead>'
        f"<tbody>{rounds}</tbody></table></section>"
        '<section aria-labelledby="failures-h"><h2 id="failures-h">Failures</h2>'
        "<p>Items that are not at the target: failed (the next run tries again) or not "
        "migrated (a SharePoint limit).</p>"
        f'<form class="filters" method="get" action="/jobs/{job.id}#failures-h">'
        + (
            f'<input type="hidden" name="events" value="{escape(events_query)}">'
            if events_query
            else ""
        )
        + '<label for="failures-filter">Filter</label>'
        f'<input id="failures-filter" name="q" type="search" value="{escape(query)}" '
        'placeholder="path, code or message">'
        '<button type="submit">Filter</button>'
        f'<a class="button" href="{escape(csv_link)}" download>Download as CSV</a></form>'
        f"<p data-failure-count>{details.failures_total:,} "
        f"failure{'s' if details.failures_total != 1 else ''}"
        f"{' matching the filter' if query else ''}.</p>{shown_note}"
        '<table><thead><tr><th scope="col">Source path</th><th scope="col">Status</th>'
        '<th scope="col">Category</th><th scope="col">Code</th><th scope="col">Reason</th>'
        '<th scope="col">Round</th><th scope="col">Attempts</th></tr></thead>'
        f"<tbody>{failures}</tbody></table></section>"
        + _job_migration(up, job.id, query, events_query)
        + '<section aria-labelledby="renames-h"><h2 id="renames-h">Renames</h2>'
        "<p>Items migrated under a name SharePoint accepts.</p>"
        '<table><thead><tr><th scope="col">Source path</th><th scope="col">Target path</th>'
        '<th scope="col">Rule</th><th scope="col">Message</th></tr></thead>'
        f"<tbody>{renames}</tbody></table>{more}</section>"
    )
    stream = urlencode({"job": job.id, **({"events": events_query} if events_query else {})})
    return layout(title, body, events=stream, status=up.text.get("updated", ""))


def message_page(title: str, message: str) -> str:
    body = f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"
    return layout(title, body, events="")


def token_page() -> str:
    body = (
        "<h1>A token is needed</h1>"
        "<p>This dashboard listens beyond this machine, so it asks for the token it printed "
        "when it started (or <code>SHARELIFT_DASHBOARD_TOKEN</code>).</p>"
        '<form method="get" action="/"><label for="token">Token</label> '
        '<input id="token" name="token" type="password" autocomplete="off" required> '
        '<button type="submit">Open</button></form>'
    )
    return layout("token needed", body, events="")
