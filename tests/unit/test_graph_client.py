"""GraphClient over httpx.MockTransport: headers, auth, retries, errors, paging, $batch."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import certifi
import httpx
import pytest

from sharelift import __version__
from sharelift.errors import AuthError
from sharelift.graph.client import (
    BatchRequest,
    GraphClient,
    Retry,
    TokenSupplier,
    make_ssl_context,
    redact_url,
    should_retry,
)
from sharelift.graph.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GraphError,
    InvalidRange,
    NameAlreadyExists,
    NotFound,
    QuotaExceeded,
    ServerError,
    Throttled,
    TransportError,
    Unauthorized,
)
from sharelift.graph.pacer import Pacer

pytestmark = pytest.mark.anyio

BASE = "https://graph.example.test/v1.0"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.secret-token"
UPLOAD = "https://tenant.sharepoint.test/_api/v2.0/drives/d/items/i/uploadSession?tempauth=SECRET"

CONTEXT = make_ssl_context()  # built once: loading the trust store is the slow part

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, target)


class Script:
    """A MockTransport handler answering from a list, recording every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def graph_error(
    status: int, code: str, message: str = "boom", inner: str | None = None, **headers: str
) -> httpx.Response:
    inner_error: dict[str, str] = {
        "date": "2026-11-23T13:00:00",
        "request-id": "req-123",
        "client-request-id": "body-crid",
    }
    if inner:
        inner_error["code"] = inner
    body = {"error": {"code": code, "message": message, "innerError": inner_error}}
    return httpx.Response(status, json=body, headers=headers)


def make_client(
    handler: Handler,
    *,
    token: TokenSupplier = lambda: TOKEN,
    max_attempts: int = 5,
) -> tuple[GraphClient, FakeClock]:
    clock = FakeClock()
    pacer = Pacer(clock=clock.monotonic, sleep=clock.sleep, random=lambda: 1.0, base_delay=1.0)
    client = GraphClient(
        token=token,
        base_url=BASE,
        pacer=pacer,
        transport=httpx.MockTransport(handler),
        max_attempts=max_attempts,
        verify=CONTEXT,
    )
    return client, clock


async def test_every_request_is_decorated_and_authorised() -> None:
    script = Script(httpx.Response(200, json={"id": "x"}))
    client, _ = make_client(script)
    async with client:
        response = await client.request("GET", "/me/drive")
    assert response.json() == {"id": "x"}
    sent = script.requests[0]
    assert str(sent.url) == BASE + "/me/drive"
    assert sent.headers["User-Agent"] == f"ISV|sharelift|sharelift/{__version__}"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    uuid.UUID(sent.headers["client-request-id"])
    assert sent.headers["return-client-request-id"] == "true"


async def test_each_attempt_gets_its_own_client_request_id() -> None:
    script = Script(httpx.Response(503, headers={"Retry-After": "1"}), httpx.Response(200))
    client, _ = make_client(script)
    async with client:
        await client.request("GET", "/me")
    ids = {r.headers["client-request-id"] for r in script.requests}
    assert len(ids) == 2


async def test_upload_urls_get_no_authorization_and_tokens_stay_home() -> None:
    script = Script(httpx.Response(202, json={"nextExpectedRanges": ["0-"]}))
    client, _ = make_client(script)
    async with client:
        await client.request("PUT", UPLOAD, content=b"abc", auth=False)
        with pytest.raises(ValueError, match="refusing"):
            await client.request("GET", "https://elsewhere.test/v1.0/me")
        with pytest.raises(ValueError, match="without TLS"):
            await client.request("PUT", "http://tenant.sharepoint.test/upload", auth=False)
    assert "Authorization" not in script.requests[0].headers
    assert str(script.requests[0].url) == UPLOAD


async def test_absolute_next_links_are_followed_with_auth() -> None:
    script = Script(
        httpx.Response(200, json={"value": [1], "@odata.nextLink": BASE + "/x?$skiptoken=a"}),
        httpx.Response(200, json={"value": [2]}),
    )
    client, _ = make_client(script)
    async with client:
        pages = [page async for page in client.pages("/x", params={"$top": 2})]
    assert [p["value"] for p in pages] == [[1], [2]]
    assert script.requests[0].url.params["$top"] == "2"
    assert script.requests[1].url.params["$skiptoken"] == "a"
    assert script.requests[1].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_429_waits_retry_after_then_succeeds() -> None:
    script = Script(
        graph_error(429, "activityLimitReached", inner="throttledRequest", **{"Retry-After": "15"}),
        httpx.Response(200, json={"ok": True}),
    )
    client, clock = make_client(script)
    async with client:
        response = await client.request("POST", "/x", json={"a": 1})
    assert response.json() == {"ok": True}
    assert clock.now == 15.0
    state = client.pacer.state()
    assert (state.throttled, state.retries) == (1, 1)


async def test_throttling_that_never_ends_raises_throttled() -> None:
    script = Script(*[httpx.Response(429, headers={"Retry-After": "2"}) for _ in range(3)])
    client, clock = make_client(script, max_attempts=3)
    async with client:
        with pytest.raises(Throttled) as caught:
            await client.request("GET", "/x")
    assert caught.value.status == 429
    assert caught.value.retry_after == 2.0
    assert len(script.requests) == 3
    assert clock.now == 4.0


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_are_retried_with_backoff_for_idempotent_calls(status: int) -> None:
    script = Script(httpx.Response(status), httpx.Response(status), httpx.Response(200))
    client, clock = make_client(script)
    async with client:
        await client.request("GET", "/x")
    assert clock.sleeps == [1.0, 2.0]


async def test_server_errors_are_not_retried_for_a_post_unless_safe() -> None:
    script = Script(httpx.Response(500), httpx.Response(500), httpx.Response(201))
    client, _ = make_client(script)
    async with client:
        with pytest.raises(ServerError):
            await client.request("POST", "/x", json={})
        assert len(script.requests) == 1
        response = await client.request("POST", "/x", json={}, retry_safe=True)
    assert response.status_code == 201


async def test_connection_never_made_is_retried_even_for_post() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(201))
    client, _ = make_client(script)
    async with client:
        response = await client.request("POST", "/x", json={})
    assert response.status_code == 201


async def test_reset_after_sending_is_retried_only_when_safe() -> None:
    script = Script(
        httpx.RemoteProtocolError("peer closed"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(200),
        httpx.RemoteProtocolError("peer closed"),
        httpx.Response(201),
    )
    client, _ = make_client(script)
    async with client:
        with pytest.raises(TransportError) as caught:
            await client.request("POST", "/x", json={})
        assert "RemoteProtocolError" in str(caught.value)
        assert caught.value.client_request_id == script.requests[0].headers["client-request-id"]
        await client.request("GET", "/x")
        await client.request("POST", "/x", json={}, retry_safe=True)
    assert len(script.requests) == 5


async def test_a_put_marked_unsafe_is_not_repeated() -> None:
    script = Script(httpx.ReadError("reset"))
    client, _ = make_client(script)
    async with client:
        with pytest.raises(TransportError):
            await client.request("PUT", "/x", content=b"1", retry_safe=False)


async def test_transport_errors_show_only_the_host_of_an_upload_url() -> None:
    """An upload URL's credential may be in its query (tempauth) or its path (the emulator's
    session id): an error shows neither, whatever the library's own message says."""
    script = Script(*[httpx.ReadError(f"reset while talking to {UPLOAD}") for _ in range(2)])
    client, _ = make_client(script, max_attempts=2)
    async with client:
        with pytest.raises(TransportError) as caught:
            await client.request("PUT", UPLOAD, content=b"x", auth=False)
    text = str(caught.value) + repr(caught.value)
    assert "SECRET" not in text and "uploadSession" not in text
    assert caught.value.url == "https://tenant.sharepoint.test/… (upload URL)"
    assert "tenant.sharepoint.test" in str(caught.value)


async def test_status_errors_show_only_the_host_of_an_upload_url() -> None:
    script = Script(graph_error(404, "itemNotFound"))
    client, _ = make_client(script)
    async with client:
        with pytest.raises(NotFound) as caught:
            await client.request("PUT", UPLOAD, content=b"x", auth=False)
    text = str(caught.value) + repr(caught.value)
    assert "SECRET" not in text and "uploadSession" not in text


async def test_401_refetches_the_token_once() -> None:
    tokens = iter(["old-token", "new-token"])

    async def supplier() -> str:
        return next(tokens)

    script = Script(graph_error(401, "InvalidAuthenticationToken"), httpx.Response(200))
    client, _ = make_client(script, token=supplier)
    async with client:
        await client.request("GET", "/me")
    assert [r.headers["Authorization"] for r in script.requests] == [
        "Bearer old-token",
        "Bearer new-token",
    ]


async def test_a_second_401_is_unauthorized_and_keeps_the_token_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sharelift.graph")
    script = Script(
        graph_error(401, "InvalidAuthenticationToken", "Access token has expired"),
        graph_error(401, "InvalidAuthenticationToken", "Access token has expired"),
    )
    client, _ = make_client(script)
    async with client:
        with pytest.raises(Unauthorized) as caught:
            await client.request("GET", "/me")
    assert caught.value.exit_code == 3
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(client)):
        assert TOKEN not in text
        assert "secret-token" not in text


async def test_a_token_supplier_that_gives_nothing_is_an_auth_error() -> None:
    client, _ = make_client(Script(), token=lambda: "")
    async with client:
        with pytest.raises(AuthError):
            await client.request("GET", "/me")


async def test_error_bodies_decode_into_typed_errors() -> None:
    script = Script(
        graph_error(
            404, "itemNotFound", "The resource could not be found.", **{"request-id": "h-1"}
        )
    )
    client, _ = make_client(script)
    async with client:
        with pytest.raises(NotFound) as caught:
            await client.request("GET", "/drives/d/items/nope")
    error = caught.value
    assert (error.status, error.code, error.message) == (
        404,
        "itemNotFound",
        "The resource could not be found.",
    )
    assert error.request_id == "h-1"  # the header wins over the body
    assert error.method == "GET"
    assert error.url == BASE + "/drives/d/items/nope"
    assert "itemNotFound" in str(error)
    assert "h-1" in str(error)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (graph_error(400, "invalidRequest"), BadRequest),
        (graph_error(413, "requestTooLarge"), BadRequest),
        (graph_error(403, "accessDenied"), Forbidden),
        (graph_error(409, "nameAlreadyExists"), NameAlreadyExists),
        (graph_error(409, "conflict"), Conflict),
        (graph_error(416, "invalidRange", inner="fragmentOverlap"), InvalidRange),
        (graph_error(507, "quotaLimitReached"), QuotaExceeded),
        (httpx.Response(418, text="teapot"), GraphError),
    ],
)
async def test_status_and_code_choose_the_error_class(
    response: httpx.Response, expected: type[GraphError]
) -> None:
    script = Script(response)
    client, _ = make_client(script)
    async with client:
        with pytest.raises(GraphError) as caught:
            await client.request("POST", "/x", json={})
    assert type(caught.value) is expected
    assert len(script.requests) == 1  # none of these is worth repeating


async def test_inner_error_fields_and_a_body_that_is_not_json() -> None:
    script = Script(
        graph_error(416, "invalidRange", inner="fragmentOverlap"),
        *[httpx.Response(502, text="<html>bad gateway</html>") for _ in range(2)],
    )
    client, _ = make_client(script, max_attempts=2)
    async with client:
        with pytest.raises(InvalidRange) as overlap:
            await client.request("PUT", UPLOAD, content=b"x", auth=False)
        with pytest.raises(ServerError) as gateway:
            await client.request("GET", "/x")
    assert overlap.value.inner_code == "fragmentOverlap"
    assert overlap.value.request_id == "req-123"
    assert overlap.value.client_request_id == script.requests[0].headers["client-request-id"]
    assert gateway.value.message == "Bad Gateway"


async def test_a_memoryview_body_is_streamed_with_its_length() -> None:
    seen: list[tuple[str, bytes]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["Content-Length"], await request.aread()))
        return httpx.Response(202, json={})

    buffer = bytearray(range(256)) * 1000
    client, _ = make_client(handler)
    async with client:
        await client.request("PUT", UPLOAD, content=memoryview(buffer)[10:200_010], auth=False)
    assert seen == [("200000", bytes(buffer[10:200_010]))]


@pytest.mark.parametrize(
    ("status", "error", "idempotent", "expected"),
    [
        (429, None, False, Retry.THROTTLED),
        (503, None, False, Retry.THROTTLED),
        (500, None, True, Retry.BACKOFF),
        (500, None, False, Retry.NO),
        (502, None, True, Retry.BACKOFF),
        (504, None, True, Retry.BACKOFF),
        (400, None, True, Retry.NO),
        (401, None, True, Retry.NO),
        (403, None, True, Retry.NO),
        (404, None, True, Retry.NO),
        (409, None, True, Retry.NO),
        (413, None, True, Retry.NO),
        (416, None, True, Retry.NO),
        (507, None, True, Retry.NO),
        (None, httpx.ConnectError("refused"), False, Retry.BACKOFF),
        (None, httpx.ConnectTimeout("slow"), False, Retry.BACKOFF),
        (None, httpx.PoolTimeout("busy"), False, Retry.BACKOFF),
        (None, httpx.ReadTimeout("slow"), False, Retry.NO),
        (None, httpx.ReadTimeout("slow"), True, Retry.BACKOFF),
        (None, httpx.RemoteProtocolError("reset"), True, Retry.BACKOFF),
        (None, httpx.WriteError("reset"), False, Retry.NO),
        (None, httpx.UnsupportedProtocol("ftp"), True, Retry.NO),
    ],
)
def test_should_retry(
    status: int | None, error: BaseException | None, idempotent: bool, expected: Retry
) -> None:
    assert should_retry(status, error, idempotent=idempotent) is expected


def test_certificate_failures_are_never_retried() -> None:
    error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert should_retry(None, error, idempotent=True) is Retry.NO
    wrapped = httpx.ConnectError("handshake")
    wrapped.__cause__ = ssl.SSLCertVerificationError("self-signed")
    assert should_retry(None, wrapped, idempotent=True) is Retry.NO


async def test_tls_verification_cannot_be_disabled() -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="TLS verification"):
        GraphClient(token=lambda: TOKEN, verify=unverified)
    with pytest.raises(ValueError, match="https"):
        GraphClient(token=lambda: TOKEN, base_url="http://127.0.0.1:8080/v1.0")
    client = GraphClient(token=lambda: TOKEN, verify=certifi.where())
    await client.aclose()


def test_redact_url() -> None:
    assert redact_url(UPLOAD) == UPLOAD.split("?")[0] + "?…"
    assert redact_url(BASE + "/me") == BASE + "/me"


# -- $batch ---------------------------------------------------------------------------------


def batch_answer(*responses: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"responses": list(responses)})


def sent_batch(request: httpx.Request) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = json.loads(request.content)["requests"]
    return body


async def test_batch_retries_inner_429s_and_the_424s_behind_them() -> None:
    throttled = {
        "id": "2",
        "status": 429,
        "headers": {"Retry-After": "7"},
        "body": {"error": {"code": "activityLimitReached", "message": "slow down"}},
    }
    script = Script(
        batch_answer(
            {"id": "3", "status": 424, "body": {"error": {"code": "failedDependency"}}},
            {"id": "1", "status": 201, "body": {"id": "A"}},
            throttled,
            {"id": "4", "status": 400, "body": {"error": {"code": "invalidRequest"}}},
        ),
        batch_answer(
            {"id": "2", "status": 201, "body": {"id": "B"}},
            {"id": "3", "status": 201, "body": {"id": "C"}},
        ),
    )
    client, clock = make_client(script)
    requests = [
        BatchRequest(id="1", method="POST", url="/a", body={"n": 1}, retry_safe=True),
        BatchRequest(id="2", method="POST", url="/b", body={"n": 2}, depends_on=("1",)),
        BatchRequest(id="3", method="POST", url="/c", body={"n": 3}, depends_on=("2",)),
        BatchRequest(id="4", method="GET", url="/d"),
    ]
    async with client:
        answers = await client.batch(requests)
    assert [a.status for a in answers] == [201, 201, 201, 400]
    assert [a.body.get("id") for a in answers[:3]] == ["A", "B", "C"]
    assert answers[3].error(requests[3]).code == "invalidRequest"
    assert clock.now == 7.0  # the inner Retry-After held the tenant
    first, second = (sent_batch(r) for r in script.requests)
    assert str(script.requests[0].url) == BASE + "/$batch"
    assert first[1] == {
        "id": "2",
        "method": "POST",
        "url": "/b",
        "body": {"n": 2},
        "headers": {"Content-Type": "application/json"},
        "dependsOn": ["1"],
    }
    # Request 1 succeeded, so the retry no longer names it.
    assert [(r["id"], r.get("dependsOn")) for r in second] == [("2", None), ("3", ["2"])]
    assert client.pacer.state().throttled == 1


async def test_a_batch_is_paced_as_the_sum_of_its_requests() -> None:
    low = {"RateLimit-Limit": "1000", "RateLimit-Remaining": "100", "RateLimit-Reset": "10"}
    script = Script(
        httpx.Response(200, json={}, headers=low),
        batch_answer(*({"id": str(i), "status": 201} for i in range(20))),
    )
    client, clock = make_client(script)
    requests = [BatchRequest(id=str(i), method="POST", url=f"/f{i}") for i in range(20)]
    async with client:
        await client.request("GET", "/me")  # 100 units left for 10 s: 0.1 s a unit
        # The batch waits for the units of its 20 writes (40 units), not of one request.
        await client.batch(requests)
        assert clock.now == pytest.approx(4.0)


async def test_batch_gives_up_after_the_attempts_and_returns_the_last_answers() -> None:
    script = Script(
        *[batch_answer({"id": "1", "status": 503, "headers": {"Retry-After": "1"}})] * 2
    )
    client, _ = make_client(script, max_attempts=2)
    async with client:
        (answer,) = await client.batch([BatchRequest(id="1", method="GET", url="/x")])
    assert answer.status == 503
    assert isinstance(answer.error(BatchRequest(id="1", method="GET", url="/x")), Throttled)


async def test_batch_inner_5xx_retried_only_when_safe() -> None:
    script = Script(
        batch_answer(
            {"id": "1", "status": 500},
            {"id": "2", "status": 500},
        ),
        batch_answer({"id": "1", "status": 200, "body": {}}),
    )
    client, _ = make_client(script)
    async with client:
        answers = await client.batch(
            [
                BatchRequest(id="1", method="GET", url="/x"),
                BatchRequest(id="2", method="POST", url="/y", body={}),
            ]
        )
    assert [a.status for a in answers] == [200, 500]


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ([], "1 to 20"),
        ([BatchRequest(id=str(i), method="GET", url="/x") for i in range(21)], "1 to 20"),
        ([BatchRequest(id="1", method="GET", url="/x")] * 2, "duplicate"),
        ([BatchRequest(id="1", method="GET", url="x")], "relative"),
        ([BatchRequest(id="1", method="GET", url="/x", depends_on=("2",))], "depends"),
    ],
)
async def test_batch_refuses_what_graph_would(requests: list[BatchRequest], message: str) -> None:
    client, _ = make_client(Script())
    async with client:
        with pytest.raises(ValueError, match=message):
            await client.batch(requests)


async def test_one_429_holds_the_other_requests_of_the_tenant() -> None:
    first_sent = asyncio.Event()
    started: dict[str, float] = {}
    clock_ref: list[FakeClock] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        started.setdefault(name, clock_ref[0].now)
        if name == "first" and not first_sent.is_set():
            first_sent.set()
            return httpx.Response(429, headers={"Retry-After": "10"})
        return httpx.Response(200)

    client, clock = make_client(handler)
    clock_ref.append(clock)

    async def second() -> None:
        await first_sent.wait()
        await client.request("GET", "/second")

    async with client:
        await asyncio.gather(client.request("GET", "/first"), second())
    assert started == {"first": 0.0, "second": 10.0}
