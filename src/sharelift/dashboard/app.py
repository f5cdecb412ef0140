"""The dashboard's web application (Starlette): its routes, each only reading.

    GET /                                   the overview
    GET /jobs/{id}?q=TEXT&events=TEXT       a job: rounds, failures (filtered), Migration API
                                            packages and the service's events (filtered),
                                            renames
    GET /jobs/{id}/failures.csv?q=TEXT      its failures as a CSV file
    GET /jobs/{id}/rounds/{n}/{file}        a file of that round's report folder (REPORT_FILES)
    GET /events?view=overview | ?job=ID&events=TEXT
                                            server-sent events: the page's live figures
    GET /static/{file}                      the page's script and styles, from the package

An event stream sends an `update` event with the page's figures (`fragments.Update`) when
they changed since the last it sent, and a comment every `KEEP_ALIVE` seconds otherwise. All of
them follow one `Live` reader (see live.py): opening more pages costs no more reads. A job's
stream also reads the job's packages and events again when its Migration API figures changed
(`Live.on_demand`, shared by every page of that job and filter).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from sharelift.dashboard.details import failures_csv, job_details
from sharelift.dashboard.fragments import job_update, overview_update
from sharelift.dashboard.guard import Guard
from sharelift.dashboard.live import Live
from sharelift.dashboard.migration import PackageDetails, figures, package_details
from sharelift.dashboard.pages import (
    REPORT_FILES,
    job_page,
    message_page,
    overview_page,
    waiting_page,
)
from sharelift.dashboard.readings import Reading

KEEP_ALIVE = 15.0
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
REPORT_TYPES = {".html": "text/html", ".csv": "text/csv", ".json": "application/json"}
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
"""A report page is self-contained with inline styles, and runs no script."""


@contextlib.asynccontextmanager
async def _closing(live: Live) -> AsyncIterator[None]:
    yield
    await live.close()


def _not_found(what: str) -> HTMLResponse:
    return HTMLResponse(message_page("Not found", what), 404)


def create_app(live: Live, *, token: str | None = None) -> Guard:
    """The dashboard over `live`'s store; `token` None: answers on this machine only
    (guard.py)."""

    async def overview(request: Request) -> Response:
        reading = await live.latest()
        if reading is None:
            return HTMLResponse(waiting_page(live.shown, live.problem))
        return HTMLResponse(overview_page(reading, live.shown))

    async def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        query = request.query_params.get("q", "")[:200]
        events_query = request.query_params.get("events", "")[:200]
        details = await live.in_store_thread(lambda s: job_details(s, job_id, query))
        if details is None:
            return _not_found(f"No job {job_id} in this state store.")
        packages = await live.in_store_thread(lambda s: package_details(s, job_id, events_query))
        page = job_page(details, await live.latest(), query, packages, events_query)
        return HTMLResponse(page)

    async def failures(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        query = request.query_params.get("q", "")[:200]
        body = await live.in_store_thread(lambda s: failures_csv(s, job_id, query))
        if body is None:
            return _not_found("No state store yet.")
        name = f"job-{job_id}-failures.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def report_file(request: Request) -> Response:
        job_id, number = request.path_params["job_id"], request.path_params["number"]
        name = request.path_params["name"]
        if name not in REPORT_FILES:
            return _not_found(f"{name} is not a report file.")
        rounds = await live.in_store_thread(lambda s: s.rounds(job_id)) or []
        rnd = next((r for r in rounds if r.number == number), None)
        if rnd is None or not rnd.report_dir:
            return _not_found(f"No reports of round {number} of job {job_id}.")
        path = Path(rnd.report_dir) / name
        # Only a regular file directly in the round's folder (not a link to elsewhere).
        if path.is_symlink() or not path.is_file():
            return _not_found(f"{name} of round {number} is not there any more.")
        return FileResponse(
            path,
            media_type=REPORT_TYPES[path.suffix],
            headers={"Content-Security-Policy": REPORT_POLICY},
        )

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _not_found(name)
        body = files("sharelift.dashboard").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name])

    async def events(request: Request) -> Response:
        job_id = request.query_params.get("job", "")
        if job_id and not job_id.isdigit():
            return _not_found("no such job")
        events_query = request.query_params.get("events", "")[:200]

        async def packages_of(reading: Reading) -> PackageDetails | None:
            number = int(job_id)
            return await live.on_demand(
                (number, events_query),
                figures(reading.packages, number),
                lambda s: package_details(s, number, events_query),
            )

        async def stream() -> AsyncIterator[str]:
            yield "retry: 3000\n\n"
            sent = ""
            last = time.monotonic()
            async for reading in live.watch():
                if reading is None:
                    continue
                if job_id:
                    packages = await packages_of(reading)
                    update = job_update(reading, int(job_id), packages, events_query)
                else:
                    update = overview_update(reading)
                data = json.dumps(update.as_json(), ensure_ascii=False, separators=(",", ":"))
                if data != sent:
                    sent, last = data, time.monotonic()
                    yield f"event: update\ndata: {data}\n\n"
                elif time.monotonic() - last >= KEEP_ALIVE:
                    last = time.monotonic()
                    yield ": still here\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    app = Starlette(
        routes=[
            Route("/", overview),
            Route("/jobs/{job_id:int}", job),
            Route("/jobs/{job_id:int}/failures.csv", failures),
            Route("/jobs/{job_id:int}/rounds/{number:int}/{name}", report_file),
            Route("/events", events),
            Route("/static/{name}", static),
        ],
        lifespan=lambda app: _closing(live),
    )
    return Guard(app, token=token)
