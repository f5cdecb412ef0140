"""The Migration API's SharePoint REST calls (`SP.Site` methods) on every site's `_api/site`.

    POST {site}/_api/site/ProvisionMigrationContainers
    POST {site}/_api/site/ProvisionMigrationQueue
    POST {site}/_api/site/CreateMigrationJob           {gWebId, azureContainerSourceUri,
                                                        azureContainerManifestUri,
                                                        azureQueueReportUri}
    POST {site}/_api/site/CreateMigrationJobEncrypted  the same + {"options": {"AES256CBCKey"}}
    POST {site}/_api/site/GetMigrationJobStatus        {MigrationJobId} (or the call form below)
    GET  {site}/_api/site/GetMigrationJobProgress(jobId='{guid}',nextToken='0')

`{site}` is the root site (nothing), `/sites/NAME`, `/teams/NAME`, or a OneDrive's
`/personal/NAME` (sp-dev-docs `docs/apis/migration-api-reference.md`,
`migration-azure.md`, `migration-job-progress-api-reference.md`). Tokens are app-only, for the
SharePoint host of the site (`https://{tenant}.sharepoint.com`, or `-my` for OneDrives), with
Sites.FullControl.All: no permission is documented for creating jobs, third-party tools use
that one, so the emulator requires it (an inference). GetMigrationJobProgress needs
Sites.Read.All or more, as its page says.

Answers follow the Accept header: `odata=verbose` gives `{"d": {"<Method>": value}}`; otherwise
an object is answered as itself and a single value as `{"value": ...}`. Errors have SharePoint
REST's shape (`sharepoint.sp_error`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sharelift.emulator import sharepoint
from sharelift.emulator.identity import Identity
from sharelift.emulator.migration.crypto import parse_key
from sharelift.emulator.migration.jobs import QueueFullError
from sharelift.emulator.migration.package import guid
from sharelift.emulator.migration.service import JobRefused, MigrationService
from sharelift.emulator.settings import EmulatorSettings
from sharelift.errors import EmulatorError

ARGUMENT = "-2147024809, System.ArgumentException"
SP_EXCEPTION = "-2146232832, Microsoft.SharePoint.SPException"
INVALID_QUERY = "-1, Microsoft.SharePoint.Client.InvalidClientQueryException"
JOB_NOT_FOUND = "-2147213145, Microsoft.SharePoint.SPException"
STATUS_EXPIRED = "-2147213146, Microsoft.SharePoint.SPException"
STATUS_LIFETIME_S = 5 * 24 * 3600
"""Progress is kept "for less than 5 days" (migration-job-progress-api-reference.md)."""
WRITE_ROLES = frozenset({"Sites.FullControl.All"})
READ_ROLES = frozenset(
    {"Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"}
)
_CALL = re.compile(r"^(\w+)(?:\((.*)\))?$")
_ARG = re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^,]*)\s*(?:,|$)")


def _call_args(text: str) -> dict[str, str]:
    """`jobId='x',nextToken=0` -> {"jobId": "x", "nextToken": "0"}."""
    args = {}
    for name, value in _ARG.findall(text):
        value = value.strip()
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            value = value[1:-1].replace("''", "'")
        args[name] = value.strip()
    return args


def _answer(request: Request, method: str, value: Any, type_name: str | None = None) -> Response:
    if "odata=verbose" in request.headers.get("accept", ""):
        if isinstance(value, dict) and type_name:
            value = {"__metadata": {"type": type_name}, **value}
        return JSONResponse({"d": {method: value}})
    if isinstance(value, dict):
        return JSONResponse(value)
    return JSONResponse({"value": value})


def _site_path(request: Request) -> tuple[str, str]:
    """(host role, server-relative path) of the site the request is addressed to."""
    name = request.path_params.get("name")
    if name is None:
        return "root", "/"
    kind = request.url.path.split("/", 2)[1]
    return ("my" if kind == "personal" else "root"), f"/{kind}/{name}"


def _throttled(request: Request) -> Response | None:
    faults = request.app.state.settings.faults
    if not faults.chance(faults.migration_throttle_rate):
        return None
    status = int(faults.migration_throttle_status)
    response = sharepoint.sp_error(
        request,
        status,
        "-2147024860, Microsoft.SharePoint.SPServerTooBusyException"
        if status == 503
        else "-2147024860, Microsoft.SharePoint.SPRequestThrottledException",
        "The request has been throttled. Please retry after the time in Retry-After.",
    )
    response.headers["Retry-After"] = "1"
    return response


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def _site_call(request: Request) -> Response:
    settings: EmulatorSettings = request.app.state.settings
    if settings.migration_api == "off":
        return sharepoint.sp_error(request, 404, INVALID_QUERY, "Not found.")
    match = _CALL.match(request.path_params["call"])
    if match is None:
        return sharepoint.sp_error(request, 400, INVALID_QUERY, "The expression is not valid.")
    method, arg_text = match.group(1), match.group(2) or ""
    handler = _METHODS.get(method)
    if handler is None:
        return sharepoint.sp_error(
            request, 400, INVALID_QUERY, f"Method '{method}' does not exist on type SP.Site."
        )
    identity: Identity = request.app.state.identity
    role, path = _site_path(request)
    principal = sharepoint.authenticate(request, identity.sharepoint_resources[role])
    if isinstance(principal, Response):
        return principal
    needed = READ_ROLES if method in _READS else WRITE_ROLES
    if principal.kind != "app" or not needed & set(principal.roles):
        return sharepoint.sp_error(
            request, 403, sharepoint.ACCESS_DENIED, sharepoint.ACCESS_DENIED_MESSAGE
        )
    if (throttled := _throttled(request)) is not None:
        return throttled
    store = request.app.state.store
    host = store.tenant.my_hostname if role == "my" else store.tenant.hostname
    site = store.tenant.site_by_path(host, path)
    if site is None:
        return sharepoint.sp_error(
            request, 404, "-2147024894, System.IO.FileNotFoundException", "File Not Found."
        )
    raw = await _body(request)
    args = _call_args(arg_text) | {k: str(v) for k, v in raw.items()}
    try:
        return await handler(request, method, site.id, args, raw)
    except EmulatorError as exc:
        return sharepoint.sp_error(request, 500, SP_EXCEPTION, str(exc))


def _service(request: Request) -> MigrationService:
    service: MigrationService = request.app.state.migration
    return service


async def _provision_containers(
    request: Request, method: str, site_id: str, args: dict[str, str], raw: dict[str, Any]
) -> Response:
    made = await asyncio.to_thread(_service(request).provision_containers)
    return _answer(
        request,
        method,
        {
            "DataContainerUri": made.data_uri,
            "EncryptionKey": base64.b64encode(made.key).decode("ascii"),
            "MetadataContainerUri": made.metadata_uri,
        },
        "SP.ProvisionedMigrationContainersInfo",
    )


async def _provision_queue(
    request: Request, method: str, site_id: str, args: dict[str, str], raw: dict[str, Any]
) -> Response:
    uri = await asyncio.to_thread(_service(request).provision_queue)
    return _answer(request, method, {"JobQueueUri": uri}, "SP.ProvisionedMigrationQueueInfo")


async def _create_job(
    request: Request, method: str, site_id: str, args: dict[str, str], raw: dict[str, Any]
) -> Response:
    for name in ("gWebId", "azureContainerSourceUri", "azureContainerManifestUri"):
        if name not in raw:
            return sharepoint.sp_error(
                request,
                400,
                INVALID_QUERY,
                f"The parameter {name} does not exist in method {method}.",
            )
    web_id = guid(str(raw["gWebId"]))
    if web_id is None or web_id != site_id.split(",")[2]:
        return sharepoint.sp_error(
            request, 400, ARGUMENT, "gWebId: no such web in this site collection."
        )
    key = None
    if method == "CreateMigrationJobEncrypted":
        options = raw.get("options")
        key = parse_key(options.get("AES256CBCKey") if isinstance(options, dict) else None)
        if key is None:
            return sharepoint.sp_error(
                request,
                400,
                ARGUMENT,
                "options.AES256CBCKey must be a base64 AES-256 key (32 bytes).",
            )
    service = _service(request)
    try:
        job_id = await asyncio.to_thread(
            service.create_job,
            site_id,
            web_id,
            raw["azureContainerSourceUri"],
            raw["azureContainerManifestUri"],
            raw.get("azureQueueReportUri"),
            key,
        )
    except JobRefused as exc:
        return sharepoint.sp_error(request, 400, ARGUMENT, str(exc))
    except QueueFullError as exc:
        response = sharepoint.sp_error(
            request,
            503,
            SP_EXCEPTION,
            f"Too many queued migration jobs: {exc}. Retry later.",
        )
        response.headers["Retry-After"] = "60"
        return response
    return _answer(request, method, job_id)


async def _job_status(
    request: Request, method: str, site_id: str, args: dict[str, str], raw: dict[str, Any]
) -> Response:
    text = args.get("MigrationJobId") or args.get("jobId") or args.get("id") or ""
    job_id = guid(text)
    if job_id is None:
        return sharepoint.sp_error(
            request,
            400,
            INVALID_QUERY,
            f"The parameter MigrationJobId does not exist in method {method}.",
        )
    service = _service(request)
    state = service.jobs.status(job_id) if service.jobs.site_of(job_id) == site_id else 0
    return _answer(request, method, state)


async def _job_progress(
    request: Request, method: str, site_id: str, args: dict[str, str], raw: dict[str, Any]
) -> Response:
    job_id = guid(args.get("jobId", ""))
    token = args.get("nextToken", "").strip("'\"")
    if job_id is None or not token:
        return sharepoint.sp_error(
            request,
            400,
            INVALID_QUERY,
            f"The parameters jobId and nextToken are required by {method}.",
        )
    service = _service(request)
    log = service.jobs.log(job_id) if service.jobs.site_of(job_id) == site_id else None
    if log is None:
        return sharepoint.sp_error(request, 500, JOB_NOT_FOUND, "Job not found")
    if log.age_s() > STATUS_LIFETIME_S:
        return sharepoint.sp_error(request, 500, STATUS_EXPIRED, "Job status expired")
    page = log.page(token)
    if page is None:
        return sharepoint.sp_error(request, 400, ARGUMENT, "nextToken is not valid for this job.")
    events, next_token = page
    if "odata=verbose" in request.headers.get("accept", ""):
        return JSONResponse(
            {
                "d": {
                    method: {
                        "__metadata": {"type": "SP.MigrationJobProgress"},
                        "Logs": {
                            "__metadata": {"type": "Collection(Edm.String)"},
                            "results": events,
                        },
                        "NextToken": next_token,
                    }
                }
            }
        )
    return JSONResponse({"Logs": events, "NextToken": next_token})


_METHODS = {
    "ProvisionMigrationContainers": _provision_containers,
    "ProvisionMigrationQueue": _provision_queue,
    "CreateMigrationJob": _create_job,
    "CreateMigrationJobEncrypted": _create_job,
    "GetMigrationJobStatus": _job_status,
    "GetMigrationJobProgress": _job_progress,
}
_READS = frozenset({"GetMigrationJobStatus", "GetMigrationJobProgress"})


def routes() -> list[BaseRoute]:
    """The `_api/site/...` routes of every site; they read `app.state.migration`."""
    methods = ["GET", "POST"]
    return [
        Route("/_api/site/{call}", _site_call, methods=methods),
        *(
            Route(f"/{kind}/{{name}}/_api/site/{{call}}", _site_call, methods=methods)
            for kind in ("sites", "teams", "personal")
        ),
    ]
