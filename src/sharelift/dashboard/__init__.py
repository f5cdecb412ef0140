"""The web dashboard: a read-only page over the state store, live while runs go on.

    server.py      DashboardServer: Hypercorn in a thread (or until Ctrl-C), the bound address,
                   the token when it listens beyond this machine
    app.py         the Starlette routes (overview, a job, its failures as CSV, report files,
                   the event stream, the page's own script and styles)
    guard.py       who may read: GET only, Host check on loopback, the token and its cookie,
                   the security headers
    live.py        Live: one reader of the store for every open page (read-only, in its own
                   thread, only while someone watches)
    readings.py    Reading: jobs and their last rounds' counters; job states; the ETA
    throughput.py  what moved per minute, from the samples written since the last look
    charts.py      the throughput chart as SVG, drawn by the server
    details.py     a job's page: rounds, failures (and their CSV), renames; read on demand
    migration.py   the Migration API section: packages and the service's jobs by state, bytes
                   packaged, uploaded and imported; a job's packages and the service's events
    fragments.py   the live parts of the pages, rendered once per reading and view
    pages.py       the pages as HTML
    text.py        figures, times, state badges, and secrets hidden from every text shown
    static/        dashboard.js (server-sent events, sorting, filtering) and dashboard.css

Usage: `sharelift dashboard --state PATH` (docs/dashboard.md), `sharelift migrate --dashboard
PORT`, or `with DashboardServer(path) as server: print(server.url)`.
"""

from __future__ import annotations

from sharelift.dashboard.server import DashboardServer, is_loopback
from sharelift.errors import DashboardError

__all__ = ["DashboardError", "DashboardServer", "is_loopback"]
