"""report.html: one self-contained page per round to hand to a manager.

No network is needed to open it: the style sheet is inline, the chart is SVG drawn here
(chart.py), there is no script. It shows the summary, the throughput over the run, the outcomes
by category, what was not migrated and why, the largest files, the renames, and the job as it
stands after the round (with every round so far). Accessible: one h1, a heading per section,
captions on every table with column headers scoped, labelled figures, text colours with a
contrast of at least 7:1 on white, and a layout that fits a laptop screen (long paths wrap).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from sharelift import __version__
from sharelift.report.chart import Interval, clock, svg
from sharelift.report.items import Listed, RoundItems
from sharelift.report.job import JobLine
from sharelift.report.outcomes import CATEGORIES, NOT_STARTED
from sharelift.report.summary import TIME_ZONE, RoundSummary, excel_time, hms

_STYLE = """
:root { color: #1a1a1a; background: #fff; font: 16px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, sans-serif; }
body { margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; border-bottom: 2px solid #0b4f8a; }
p.where { margin: 0 0 .25rem; overflow-wrap: anywhere; }
.status { display: inline-block; padding: 0 .5rem; border-radius: .25rem; color: #fff;
  background: #0b4f8a; font-weight: 600; }
.status.bad { background: #a4001d; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr));
  gap: .5rem; margin: 0; }
dl.figures div { border: 1px solid #767676; border-radius: .25rem; padding: .5rem .75rem; }
dt { font-size: .875rem; color: #3b3b3b; }
dd { margin: 0; font-size: 1.25rem; font-weight: 600; }
dd small { font-size: .8rem; font-weight: 400; color: #3b3b3b; }
dd.bad { color: #a4001d; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border: 1px solid #bdbdbd; padding: .25rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
th { background: #ececec; }
td.n, th.n { text-align: right; white-space: nowrap; }
figure { margin: 0; }
svg.chart { width: 100%; height: auto; max-height: 22rem; }
svg .grid { stroke: #d6d6d6; } svg .axis { stroke: #1a1a1a; }
svg .area { fill: #0b4f8a; fill-opacity: .18; } svg .rate { fill: none; stroke: #0b4f8a;
  stroke-width: 2; } svg .average { stroke: #a4001d; stroke-dasharray: 6 4; }
svg text { fill: #1a1a1a; font-size: 12px; } svg .label { font-size: 13px; }
details { margin: .5rem 0; } summary { cursor: pointer; }
footer { margin-top: 2rem; font-size: .875rem; color: #3b3b3b; }
"""


def _n(value: int | float) -> str:
    return f"{value:,}"


def size_text(n: int) -> str:
    """Bytes for a person: `41.2 MiB`."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TiB"


def _bytes(n: int) -> str:
    exact = f" <small>({_n(n)} bytes)</small>" if n >= 1024 else ""
    return escape(size_text(n)) + exact


def _table(
    caption: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: frozenset[int] = frozenset(),
    table_id: str = "",
) -> str:
    """A table; cells are HTML already (escape text first)."""
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(
        f'<th scope="col"{" class=n" if i in numeric else ""}>{escape(c)}</th>'
        for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f"<table{ident}><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _figure(label: str, key: str, value: str, bad: bool = False) -> str:
    cls = ' class="bad"' if bad else ""
    return (
        f'<div><dt id="l-{key}">{escape(label)}</dt><dd{cls} data-figure="{key}">{value}</dd></div>'
    )


def _summary(s: RoundSummary) -> str:
    figures = [
        ("Migrated items", "migrated_items", _n(s.migrated_items), False),
        ("Migrated", "migrated_bytes", _bytes(s.migrated_bytes), False),
        ("Failed items", "failed_items", _n(s.failed_items), s.failed_items > 0),
        ("Not migrated (limits)", "blocked_items", _n(s.blocked_items), s.blocked_items > 0),
        ("Skipped items", "skipped_items", _n(s.skipped_items), False),
        ("Unchanged items", "unchanged_items", _n(s.unchanged_items), False),
        ("Renamed or with a note", "warning_count", _n(s.warning_count), False),
        ("Scanned items", "total_scanned_items", _n(s.total_scanned_items), False),
        ("Files seen", "count_of_files", _n(s.count_of_files), False),
        ("Bytes of the files seen", "total_bytes", _bytes(s.total_bytes), False),
        ("Duration", "duration", escape(hms(s.duration_seconds)), False),
        ("Speed", "gb_per_hour", f"{s.gb_per_hour:,.3f} GB/hour", False),
        ("Throttled requests", "throttled_requests", _n(s.throttled_requests), False),
    ]
    if s.interrupted_items or s.not_started_items:
        figures += [
            ("Interrupted (resume next run)", "interrupted_items", _n(s.interrupted_items), True),
            (NOT_STARTED, "not_started_items", _n(s.not_started_items), True),
        ]
    if s.deleted_items:
        figures.append(("Deleted at the target", "deleted_items", _n(s.deleted_items), False))
    cells = "".join(_figure(*f) for f in figures)
    return f'<dl class="figures">{cells}</dl>'


def _listed(caption: str, items: Sequence[Listed], total: int, what: str, tid: str) -> str:
    if not items:
        return f"<p>No {escape(what)} in this round.</p>"
    more = (
        f"<p>The first {len(items):,} of {total:,} are listed; ItemReport.csv has them all.</p>"
        if total > len(items)
        else ""
    )
    rows = [
        [
            escape(i.source),
            escape(i.destination),
            escape(i.category),
            escape(i.code),
            escape(i.message),
        ]
        for i in items
    ]
    columns = ["Source", "Destination", "Result category", "Code", "Why"]
    return _table(caption, columns, rows, table_id=tid) + more


def render(
    summary: RoundSummary,
    gathered: RoundItems,
    found: list[Interval],
    job_now: Sequence[JobLine],
    history: Sequence[RoundSummary],
    generated: str,
) -> str:
    """The whole page."""
    s = summary
    bad = s.failed_items > 0 or s.status != "Completed"
    title = f"Migration report: job {s.task_id}, round {s.round_number}"
    meanings = {c.name: c.meaning for c in CATEGORIES}
    category_rows = [
        [escape(name), _n(count), escape(size_text(gathered.category_bytes[name])),
         escape(meanings.get(name, ""))]
        for name, count in sorted(gathered.categories.items(), key=lambda kv: -kv[1])
    ]  # fmt: skip
    if s.unchanged_items:
        category_rows.append(
            ["Unchanged", _n(s.unchanged_items), "", "migrated before and unchanged since"]
        )
    if s.not_started_items:
        category_rows.append(
            [NOT_STARTED, _n(s.not_started_items), "", "the round stopped before it got there"]
        )
    failure_rows = [
        [escape(st), escape(cat), escape(code), _n(g.count), escape(size_text(g.size)),
         escape(g.message), escape(g.example)]
        for (st, cat, code), g in gathered.failure_groups()
    ]  # fmt: skip
    largest_rows = [
        [escape(size_text(i.size or 0)), escape(i.source), escape(i.status), escape(i.category)]
        for i in gathered.largest
    ]
    job_rows = [
        [escape(j.where), escape(j.category), escape(j.code), escape(j.kind), _n(j.items),
         escape(size_text(j.size)), str(j.last_round or ""), escape(j.message)]
        for j in job_now
    ]  # fmt: skip
    history_rows = [
        [str(h.round_number), escape(h.status), escape(excel_time(h.start)),
         escape(hms(h.duration_seconds)), _n(h.migrated_items), escape(size_text(h.migrated_bytes)),
         _n(h.skipped_items), _n(h.failed_items), f"{h.gb_per_hour:,.3f}"]
        for h in history
    ]  # fmt: skip
    interval_rows = [
        [escape(clock(i.end)), f"{i.rate / 1_000_000:,.2f}", _n(i.files)] for i in found if i.bytes
    ]
    failures = (
        _table("Not migrated, by reason", ["Status", "Result category", "Code", "Items",
               "Bytes", "Why", "Example"], failure_rows, frozenset({3, 4}), "failure-groups")
        if failure_rows
        else "<p>Nothing failed and nothing was blocked in this round.</p>"
    )  # fmt: skip
    log_line = (
        f"<p>Log: {escape(s.log_path)}</p>" if s.log_path else "<p>No log file was written.</p>"
    )
    body = f"""
<main>
<h1>{escape(title)}</h1>
<p class="where"><strong>From</strong> {escape(s.source)}</p>
<p class="where"><strong>To</strong> {escape(s.destination)}</p>
<p>Status: <span class="status{" bad" if bad else ""}" data-figure="status">{
        escape(s.status)
    }</span>
 &middot; started {escape(excel_time(s.start))} {TIME_ZONE}, ended {
        escape(excel_time(s.end)) or "-"
    }
 {TIME_ZONE} &middot; on {escape(s.host) or "-"}</p>
<section aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2>{_summary(s)}</section>
<section aria-labelledby="h-chart"><h2 id="h-chart">Throughput over the run</h2>
<figure>{svg(found)}<figcaption>Megabytes (1,000,000 bytes) sent per second, in
{len(found)} intervals of {clock(found[0].length) if found else "-"}; the dashed line is the
average.</figcaption></figure>
<details><summary>The chart's figures as a table</summary>
{
        _table(
            "Throughput by interval",
            ["Interval ending at", "MB/s", "Files done"],
            interval_rows,
            frozenset({1, 2}),
            "intervals",
        )
    }
</details></section>
<section aria-labelledby="h-outcomes"><h2 id="h-outcomes">Outcomes by category</h2>
{
        _table(
            "Items of this round by result category",
            ["Result category", "Items", "Bytes", "What it means"],
            category_rows,
            frozenset({1, 2}),
            "categories",
        )
    }
</section>
<section aria-labelledby="h-failed"><h2 id="h-failed">Not migrated: failures and limits</h2>
{failures}
{
        _listed(
            "Items not migrated, with the reason",
            gathered.failed,
            gathered.failed_count,
            "failed or blocked items",
            "failed-items",
        )
    }
</section>
<section aria-labelledby="h-largest"><h2 id="h-largest">Largest files</h2>
{
        _table(
            "The largest files of this round",
            ["Size", "Source", "Status", "Result category"],
            largest_rows,
            frozenset({0}),
            "largest",
        )
        if largest_rows
        else "<p>No files.</p>"
    }
</section>
<section aria-labelledby="h-renames"><h2 id="h-renames">Renamed items</h2>
{
        _listed(
            "Items migrated under another name, and the rule",
            gathered.renames,
            gathered.rename_count,
            "renamed items",
            "renames",
        )
    }
</section>
<section aria-labelledby="h-job"><h2 id="h-job">The job after this round</h2>
{
        _table(
            "What is at the target now, and what is not and why",
            ["Where", "Result category", "Code", "Type", "Items", "Bytes", "Last round", "Why"],
            job_rows,
            frozenset({4, 5, 6}),
            "job-now",
        )
    }
{
        _table(
            "Every round of the job",
            [
                "Round",
                "Status",
                f"Started ({TIME_ZONE})",
                "Duration",
                "Migrated",
                "Migrated bytes",
                "Skipped",
                "Failed",
                "GB/hour",
            ],
            history_rows,
            frozenset({0, 4, 5, 6, 7, 8}),
            "rounds",
        )
    }
</section>
<footer>{log_line}<p>Beside this page: ItemReport.csv (every item of the round),
FailureSummary.csv, SummaryReport.csv, JobReport.csv, summary.json. Times are {TIME_ZONE}.
Written by sharelift {escape(__version__)} at {escape(excel_time(generated))} {TIME_ZONE}.</p>
</footer>
</main>"""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>{body}\n"
        "</body>\n</html>\n"
    )
