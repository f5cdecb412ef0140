"""Assembles the emulator's ASGI app: identity, Graph, SharePoint REST and admin routes, and the
middleware stack (observe outermost, then hosts, faults, Graph authentication).

Admin endpoints (all need the header `X-Emulator-Key: <admin_key from emulator.json>`):

    GET  /_emulator/info              the emulator.json contents, users and drives as of now
    GET  /_emulator/stats             counters (see observe.Stats.snapshot)
    POST /_emulator/stats/reset       zero the counters
    GET  /_emulator/faults            current faults and their seed (and the tenant settings
                                      that may change at runtime: provisioning delay, upload
                                      session lifetime, office enrichment, refusing a bearer
                                      token on upload URLs)
    PUT  /_emulator/faults            change some of them: {"latency_ms": 50, "seed": 7, ...}
    POST /_emulator/faults/reset      all faults off, throttling windows emptied; the seed, the
                                      service's own behaviours (replace_not_found_rate) and the
                                      tenant settings back to their start values
    POST /_emulator/device/approve    {"user_code", "upn"}: sign a user in for a device code
    POST /_emulator/device/decline    {"user_code"}: the user refuses
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sharelift.emulator import enrichment, sharepoint
from sharelift.emulator import identity as identity_mod
from sharelift.emulator.certs import ensure_certs
from sharelift.emulator.faults import FaultsMiddleware, Throttle, standard_rules
from sharelift.emulator.hosts import HostsMiddleware
from sharelift.emulator.identity import (
    GraphAuthMiddleware,
    Identity,
    UserInfo,
    load_or_create_registration,
)
from sharelift.emulator.migration import rest as migration_rest
from sharelift.emulator.migration.service import MigrationService
from sharelift.emulator.migration.store_target import target_for_site
from sharelift.emulator.observe import ObserveMiddleware, RequestLog, Stats
from sharelift.emulator.settings import EmulatorSettings, Faults
from sharelift.emulator.store import Store

ADMIN_KEY_HEADER = "x-emulator-key"
_SETTINGS_KNOBS: dict[str, type] = {
    "provisioning_delay_s": float,
    "upload_session_lifetime_s": float,
    "office_enrichment": bool,
    "refuse_bearer_on_upload_urls": bool,
}
"""EmulatorSettings fields that PUT /_emulator/faults may also change, with their types."""


def _check_knob(name: str, value: object) -> float | bool:
    """A knob's new value, or ValueError saying what it must be."""
    if _SETTINGS_KNOBS[name] is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return float(value)


def store_user_lookup(store: Store) -> identity_mod.UserLookup:
    """Identity's view of the store's users."""

    def lookup(upn: str) -> UserInfo | None:
        user = store.tenant.user(upn)
        if user is None:
            return None
        return UserInfo(upn=user.upn, object_id=user.id, display_name=user.display_name)

    return lookup


def _admin(request: Request) -> Response | None:
    """None when the request carries the admin key, else the 401 to answer."""
    identity: Identity = request.app.state.identity
    given = request.headers.get(ADMIN_KEY_HEADER, "")
    if hmac.compare_digest(given.encode(), identity.registration.admin_key.encode()):
        return None
    return JSONResponse(
        {"error": "unauthorized", "message": f"missing or wrong {ADMIN_KEY_HEADER} header"},
        status_code=401,
    )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _faults_view(settings: EmulatorSettings) -> dict[str, Any]:
    view = dataclasses.asdict(settings.faults)
    view |= {name: getattr(settings, name) for name in _SETTINGS_KNOBS}
    return view


async def _info(request: Request) -> Response:
    if (refused := _admin(request)) is not None:
        return refused
    provider = getattr(request.app.state, "info_provider", None)
    return JSONResponse(provider() if provider else {})


async def _stats(request: Request) -> Response:
    if (refused := _admin(request)) is not None:
        return refused
    stats: Stats = request.app.state.stats
    log: RequestLog = request.app.state.request_log
    log.flush()  # so requests.jsonl is complete for whoever reads the counters
    return JSONResponse(stats.snapshot())


async def _stats_reset(request: Request) -> Response:
    if (refused := _admin(request)) is not None:
        return refused
    request.app.state.stats.reset()
    return Response(status_code=204)


async def _faults(request: Request) -> Response:
    if (refused := _admin(request)) is not None:
        return refused
    settings: EmulatorSettings = request.app.state.settings
    if request.method == "PUT":
        changes = await _json_body(request)
        knobs = {k: changes.pop(k) for k in list(changes) if k in _SETTINGS_KNOBS}
        try:
            candidate = dataclasses.replace(settings.faults)
            candidate.update(changes)
            checked = {name: _check_knob(name, value) for name, value in knobs.items()}
        except ValueError as exc:
            return JSONResponse({"error": "badRequest", "message": str(exc)}, status_code=400)
        settings.faults.update(changes)
        for name, value in checked.items():
            setattr(settings, name, value)
    return JSONResponse(_faults_view(settings))


async def _faults_reset(request: Request) -> Response:
    if (refused := _admin(request)) is not None:
        return refused
    settings: EmulatorSettings = request.app.state.settings
    reset_faults(request.app)
    return JSONResponse(_faults_view(settings))


async def _device_approve(request: Request) -> Response:
    if (refused := _admin(request)) is not None:
        return refused
    body = await _json_body(request)
    identity: Identity = request.app.state.identity
    try:
        identity.approve_device_code(str(body.get("user_code", "")), str(body.get("upn", "")))
    except KeyError:
        return JSONResponse({"error": "notFound", "message": "no such pending code"}, 404)
    except LookupError as exc:
        return JSONResponse({"error": "notFound", "message": str(exc)}, 404)
    return Response(status_code=204)


async def _device_decline(request: Request) -> Response:
    if (refused := _admin(request)) is not None:
        return refused
    body = await _json_body(request)
    identity: Identity = request.app.state.identity
    try:
        identity.decline_device_code(str(body.get("user_code", "")))
    except KeyError:
        return JSONResponse({"error": "notFound", "message": "no such pending code"}, 404)
    return Response(status_code=204)


def reset_faults(app: Starlette) -> None:
    """All faults off, throttling windows emptied; the seed (its sequence restarted), the
    service's own behaviours and the tenant settings back to their start values."""
    settings: EmulatorSettings = app.state.settings
    start = {"seed": app.state.initial_seed, **app.state.initial_behaviours}
    settings.faults.update(dataclasses.asdict(Faults()) | start)
    for name, value in app.state.initial_knobs.items():
        setattr(settings, name, value)
    throttle: Throttle = app.state.throttle
    throttle.reset()


def admin_routes() -> list[BaseRoute]:
    return [
        Route("/_emulator/info", _info, methods=["GET"]),
        Route("/_emulator/stats", _stats, methods=["GET"]),
        Route("/_emulator/stats/reset", _stats_reset, methods=["POST"]),
        Route("/_emulator/faults", _faults, methods=["GET", "PUT"]),
        Route("/_emulator/faults/reset", _faults_reset, methods=["POST"]),
        Route("/_emulator/device/approve", _device_approve, methods=["POST"]),
        Route("/_emulator/device/decline", _device_decline, methods=["POST"]),
    ]


def create_app(
    settings: EmulatorSettings,
    store: Store,
    *,
    graph_routes: list[BaseRoute] | None = None,
) -> Starlette:
    """The emulator app over `store`. Creates certificates and the app registration if missing.

    `graph_routes` replaces `sharelift.emulator.graph.routes()` (tests of the frame only).
    `app.state` holds settings, store, identity, stats, request_log, throttle, provisioner,
    migration (the Migration API service; stop it with the app);
    the server adds `info` and `info_provider` once it knows its URL. Close
    `app.state.request_log` when done.
    """
    certs = ensure_certs(settings.data_dir, settings.tenant)
    registration, signing_key = load_or_create_registration(settings.data_dir)
    identity = Identity(settings, certs, registration, signing_key, store_user_lookup(store))
    if graph_routes is None:
        from sharelift.emulator.graph import routes as graph_routes_of

        graph_routes = graph_routes_of()
    stats = Stats()
    request_log = RequestLog(settings.data_dir / "requests.jsonl" if settings.request_log else None)
    throttle = Throttle()
    app = Starlette(
        routes=[
            *admin_routes(),
            *sharepoint.routes(),
            *migration_rest.routes(),
            *graph_routes,
            *identity_mod.routes(),
        ],
        middleware=[
            Middleware(ObserveMiddleware, stats=stats, log=request_log),
            Middleware(HostsMiddleware, tenant=settings.tenant),
            Middleware(
                FaultsMiddleware,
                settings=settings,
                rules=standard_rules(throttle, registration.client_id),
            ),
            Middleware(GraphAuthMiddleware, identity=identity),
        ],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.identity = identity
    app.state.certs = certs
    app.state.stats = stats
    app.state.request_log = request_log
    app.state.throttle = throttle
    app.state.provisioner = sharepoint.Provisioner(store, settings)
    store.files.add_commit_hook(enrichment.commit_hook(store, settings))
    app.state.migration = MigrationService(
        settings,
        certs.server_cert,
        certs.server_key,
        certs.ca_cert,
        lambda site_id: target_for_site(store, site_id),
    )
    app.state.initial_knobs = {name: getattr(settings, name) for name in _SETTINGS_KNOBS}
    app.state.initial_seed = settings.faults.seed
    app.state.initial_behaviours = {
        name: getattr(settings.faults, name) for name in Faults.SERVICE_BEHAVIOURS
    }
    return app
