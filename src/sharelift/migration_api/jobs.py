"""The Migration API's REST calls on a site, and reading what a job reports.

`SP.Site` methods at `{site}/_api/site/...` (sp-dev-docs `docs/apis/migration-api-reference.md`,
`migration-azure.md`, `migration-job-progress-api-reference.md`):

    ProvisionMigrationContainers   POST -> DataContainerUri, MetadataContainerUri, EncryptionKey
    ProvisionMigrationQueue        POST -> JobQueueUri
    CreateMigrationJobEncrypted    POST gWebId, azureContainerSourceUri,
                                        azureContainerManifestUri, azureQueueReportUri,
                                        options.AES256CBCKey -> the job id
    GetMigrationJobProgress        GET (jobId='…',nextToken='…') -> Logs, NextToken

The calls go through a `GraphClient` bound to the site's SharePoint origin with an app-only
token for that host, paced by the tenant's one pacer: 429 and 503 wait for `Retry-After` there
(migration-job-progress-api-reference.md, "Error Handling"). A 500 is not retried ("Do Not
Retry"); nor is creating a job after the request went out and no answer came, since the
service may hold the job (the caller records it as possibly submitted).

Answers come as `{"d": {"<Call>": …}}` with `Accept: application/json;odata=verbose` (what the
progress page asks for) and as the bare object or `{"value": …}` without it: both are read.

The queue (`read_queue`): messages are base64 text of an event's JSON or, for an encrypted
job, of `{"Label": "Encrypted", "JobId", "IV", "Content"}`, the Content being the event
encrypted with the job's key (migration-azure.md, "Azure Queue Encryption", whose sample
prints the four fields as four one-key objects: both forms are read).

Microsoft plans to retire the queue and `GetMigrationJobStatus` in the second half of 2026
(migration-api-reference.md): progress is read with `GetMigrationJobProgress`; the queue only
when asked for, and `GetMigrationJobStatus` not at all.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient

from sharelift.errors import ShareliftError
from sharelift.graph.client import GraphClient
from sharelift.graph.errors import GraphError
from sharelift.migration_api.crypto import decrypt

_VERBOSE = {"Accept": "application/json;odata=verbose"}
JOB_NOT_FOUND = "-2147213145"
STATUS_EXPIRED = "-2147213146"
TERMINAL_EVENTS = frozenset({"JobEnd", "JobCancelled", "JobDeleted"})
"""Events after which a job reports nothing more (migration-events.md)."""


class MigrationApiError(ShareliftError):
    """A Migration API call was refused or failed; the message says which call and why, never
    a SAS or key."""


@dataclass(frozen=True)
class Containers:
    """A content and a manifest container (URIs with SAS) and the key their blobs use."""

    data_uri: str
    manifest_uri: str
    key: bytes

    def __repr__(self) -> str:
        return "Containers(<hidden>)"


@dataclass(frozen=True)
class Progress:
    """One answer of `GetMigrationJobProgress`: the events (decoded) and the next token."""

    events: list[dict[str, str]]
    next_token: str


def _answer(body: Any, call: str) -> Any:
    if isinstance(body, Mapping):
        if "d" in body and isinstance(body["d"], Mapping):
            inner = body["d"]
            return inner.get(call, inner)
        if "value" in body:
            return body["value"]
    return body


def _refused(call: str, exc: GraphError) -> MigrationApiError:
    if exc.status == 401:
        hint = (
            "; SharePoint takes app-only tokens from certificate credentials only "
            "(--auth certificate)"
        )
    elif exc.status == 403:
        hint = "; the app needs Sites.FullControl.All for the Migration API"
    else:
        hint = ""
    code = f" [{exc.code}]" if exc.code else ""
    return MigrationApiError(f"{call} failed: HTTP {exc.status}{code} {exc.message}{hint}")


class MigrationService:
    """The Migration API calls of one site. `client` is bound to the site's SharePoint origin
    (the emulator's root for the emulator); `site_path` is the site's server-relative path
    (`/sites/Team`, "" for a root site)."""

    def __init__(self, client: GraphClient, site_path: str) -> None:
        self.client = client
        self.site_path = site_path.rstrip("/")

    def _url(self, call: str) -> str:
        return f"{self.site_path}/_api/site/{call}"

    async def _post(self, call: str, body: Mapping[str, Any] | None, *, safe: bool) -> Any:
        try:
            response = await self.client.request(
                "POST", self._url(call), json=body or {}, headers=_VERBOSE, retry_safe=safe
            )
        except GraphError as exc:
            raise _refused(call, exc) from None
        try:
            return _answer(response.json(), call)
        except ValueError:
            raise MigrationApiError(f"{call} answered something that is not JSON") from None

    async def provision_containers(self) -> Containers:
        """New SharePoint-provided containers and their key (each serves one job)."""
        answer = await self._post("ProvisionMigrationContainers", None, safe=True)
        try:
            data = str(answer["DataContainerUri"])
            manifest = str(answer.get("MetadataContainerUri") or answer["MetadataContainer"])
            key = answer["EncryptionKey"]
            raw = bytes(key) if isinstance(key, list) else base64.b64decode(str(key))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise MigrationApiError(
                "ProvisionMigrationContainers answered without two container URIs and a key"
            ) from None
        if len(raw) != 32:
            raise MigrationApiError("ProvisionMigrationContainers gave a key that is not 256 bits")
        return Containers(data, manifest, raw)

    async def provision_queue(self) -> str:
        answer = await self._post("ProvisionMigrationQueue", None, safe=True)
        uri = answer.get("JobQueueUri") if isinstance(answer, Mapping) else None
        if not isinstance(uri, str) or not uri:
            raise MigrationApiError("ProvisionMigrationQueue answered without JobQueueUri")
        return uri

    async def create_job(self, web_id: str, containers: Containers, queue_uri: str | None) -> str:
        """Submit an encrypted import job; its id. Not retried once the request went out
        (the service may have created the job): the caller records the package as
        `submitting` first."""
        body = {
            "options": {"AES256CBCKey": base64.b64encode(containers.key).decode("ascii")},
            "gWebId": web_id,
            "azureContainerSourceUri": containers.data_uri,
            "azureContainerManifestUri": containers.manifest_uri,
            "azureQueueReportUri": queue_uri,
        }
        answer = await self._post("CreateMigrationJobEncrypted", body, safe=False)
        if not isinstance(answer, str) or not answer.strip("{}0-"):
            # "The method returns a null value, if it fails to create the job."
            raise MigrationApiError("CreateMigrationJobEncrypted created no job")
        return answer.strip("{}").lower()

    async def progress(self, job_id: str, next_token: str) -> Progress:
        """The job's events since `next_token` ("0" first). Raises MigrationApiError with the
        service's code (`JOB_NOT_FOUND`, `STATUS_EXPIRED`) in its message."""
        call = f"GetMigrationJobProgress(jobId='{job_id}',nextToken='{next_token}')"
        try:
            response = await self.client.request(
                "GET", self._url(call), headers=_VERBOSE, retry_safe=False
            )
            answer = _answer(response.json(), "GetMigrationJobProgress")
        except GraphError as exc:
            raise _refused("GetMigrationJobProgress", exc) from None
        except ValueError:
            raise MigrationApiError("GetMigrationJobProgress answered something not JSON") from None
        logs = answer.get("Logs") if isinstance(answer, Mapping) else None
        if isinstance(logs, Mapping):
            logs = logs.get("results")
        if not isinstance(logs, list):
            raise MigrationApiError("GetMigrationJobProgress answered without Logs")
        token = answer.get("NextToken", next_token)
        return Progress([e for e in map(parse_event, logs) if e], str(token))


def parse_event(text: object) -> dict[str, str] | None:
    """One event (a JSON object of strings) from its text; None when it is not one."""
    if isinstance(text, Mapping):
        return {str(k): str(v) for k, v in text.items()}
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def open_envelope(text: str, keys: Mapping[str, bytes]) -> dict[str, str] | None:
    """The event in one queue message (base64 text, or raw JSON), decrypted with the key of
    its job (`keys`, by job id in lower case) when it is encrypted; None for a message that
    is not an event or belongs to no job of `keys`."""
    try:
        body = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        body = text
    try:
        value = json.loads(body)
    except ValueError:
        value = json.loads(f"[{body}]") if body.lstrip().startswith("{") else None
    if isinstance(value, list):  # the documents' four one-key objects
        merged: dict[str, Any] = {}
        for part in value:
            if isinstance(part, dict):
                merged.update(part)
        value = merged
    if not isinstance(value, dict):
        return None
    if value.get("Label") != "Encrypted":
        return parse_event(value)
    key = keys.get(str(value.get("JobId", "")).lower())
    if key is None:
        return None
    try:
        plain = decrypt(
            key, base64.b64decode(str(value["IV"])), base64.b64decode(str(value["Content"]))
        )
    except (KeyError, ValueError, binascii.Error):
        return None
    return parse_event(plain.decode("utf-8", "replace"))


def read_queue(
    queue_uri: str, keys: Mapping[str, bytes], ca_file: str | None
) -> list[dict[str, str]]:
    """Take the messages waiting on a job queue: the events of the jobs in `keys` (their
    messages are deleted once read); others are left for whoever follows those jobs. Runs in
    a worker thread (synchronous client). Raises MigrationApiError when the queue refuses."""
    queue = QueueClient.from_queue_url(queue_uri, connection_verify=ca_file or True)
    events: list[dict[str, str]] = []
    try:
        with queue:
            for message in queue.receive_messages(messages_per_page=32, visibility_timeout=30):
                event = open_envelope(str(message.content), keys)
                if event is None:
                    continue
                events.append(event)
                queue.delete_message(message)
    except AzureError as exc:
        code = getattr(exc, "error_code", None) or type(exc).__name__
        raise MigrationApiError(f"the job queue refused to be read: {code}") from None
    return events
