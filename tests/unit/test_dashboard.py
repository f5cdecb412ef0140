"""The dashboard's parts without a browser: throughput from samples, job states and the ETA from
a real state store, secrets hidden from what is shown, and the server over real HTTP
(read-only, the Host check, the token and its cookie, report files and nothing else)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sharelift.dashboard import DashboardServer, is_loopback
from sharelift.dashboard.charts import svg
from sharelift.dashboard.details import failures_csv, job_details
from sharelift.dashboard.guard import host_name, same_token
from sharelift.dashboard.readings import Reader
from sharelift.dashboard.text import shown
from sharelift.dashboard.throughput import Throughput
from sharelift.state import ItemStatus, RoundSample, RoundStatus, StateStore, open_state

T0 = datetime(2026, 11, 23, 13, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sample(seconds: float, files: int, size: int) -> RoundSample:
    return RoundSample(at(seconds), files, size, 0, 0, 0)


def test_throughput_counts_each_move_once_by_minute() -> None:
    tp = Throughput()
    tp.take([(1, sample(0, 0, 0)), (1, sample(30, 10, 1000)), (2, sample(50, 5, 500))])
    # Read again with the overlap, plus a new sample and a rewind of round 1.
    tp.take([(1, sample(30, 10, 1000)), (2, sample(50, 5, 500)), (1, sample(70, 12, 900))])
    tp.take([(1, sample(80, 14, 1400))])
    chart = tp.chart({1, 2}, T0, T0 + timedelta(seconds=90))
    assert chart.unit == "minute"
    assert [(b.bytes, b.files) for b in chart.bars] == [(1500, 15), (500, 4)]
    assert chart.bars[1].length == pytest.approx(30.0)
    only_one = tp.chart({1}, T0, T0 + timedelta(seconds=90))
    assert [b.bytes for b in only_one.bars] == [1000, 500]
    rate, files = tp.rate_now({1, 2}, T0 + timedelta(seconds=85))
    assert rate == pytest.approx(500 / 20) and files == pytest.approx(4 / 20)
    assert tp.since() == at(70)


def test_a_long_window_is_drawn_per_hour() -> None:
    tp = Throughput()
    tp.take(
        [(1, sample(0, 0, 0)), (1, sample(3600 * 2 + 5, 10, 7200)), (1, sample(3600 * 4, 20, 9000))]
    )
    chart = tp.chart({1}, T0, T0 + timedelta(hours=4, minutes=30))
    assert chart.unit == "hour"
    assert [b.bytes for b in chart.bars] == [0, 0, 7200, 0, 1800]
    drawn = svg(chart)
    assert "per hour" in drawn and drawn.count('class="bar"') == 5


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("PUT https://contoso.sharepoint.com/_api/up?tempauth=eyJ0eXAi failed", "eyJ0eXAi"),
        ("https://acct.blob.core.windows.net/c/b?sv=2023&sig=abc%2Bdef&se=2026", "abc%2Bdef"),
        ("postgresql://sharelift:hunter2@db.example/state", "hunter2"),
        ("broker redis://:hunter3@queue.example:6379/0 unreachable", "hunter3"),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig", "eyJhbGciOi"),
    ],
)
def test_secrets_are_hidden_from_what_is_shown(text: str, hidden: str) -> None:
    assert hidden not in shown(text)
    assert "(hidden)" in shown(text)


def test_plain_text_and_plain_urls_are_shown_as_they_are() -> None:
    plain = "https://contoso.sharepoint.com/sites/Team/Shared Documents/a?id=1 — 409 conflict"
    assert shown(plain) == plain


def test_addresses_and_tokens() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.4")  # noqa: S104
    assert host_name("127.0.0.1:8765") == "127.0.0.1" and host_name("[::1]:80") == "[::1]"
    assert host_name("localhost") == "localhost"
    assert same_token("abc", "abc") and not same_token("abd", "abc")


def _job_with_a_round(store: StateStore, key: str, status: RoundStatus | None) -> int:
    job = store.ensure_job(key, f"/src/{key}", f"https://t/{key}", {"name": f"jobs.csv#{key}"})
    rnd = store.start_round(job.id)
    store.update_round(rnd.id, files_total=10, bytes_total=1000, files_done=4, bytes_done=400)
    store.update_round(rnd.id, files_failed=1 if key == "b" else 0)
    if status is not None:
        store.finish_round(rnd.id, status)
    return job.id


def test_a_reading_gives_each_job_its_state_and_the_totals(tmp_path: Path) -> None:
    with open_state(tmp_path / "s.db") as store:
        _job_with_a_round(store, "a", None)
        _job_with_a_round(store, "b", RoundStatus.COMPLETED)
        store.ensure_job("c", "/src/c", "https://t/c")
        reading = Reader().read(store)
    states = {j.name: j.state for j in reading.jobs}
    assert states == {
        "jobs.csv#a": "running",
        "jobs.csv#b": "completed with failures",
        "": "not started",
    }
    assert reading.by_state == {"running": 1, "completed with failures": 1, "not started": 1}
    assert (reading.files_total, reading.files_settled, reading.files_failed) == (20, 9, 1)
    assert (reading.bytes_total, reading.bytes_done) == (2000, 800)
    assert reading.eta_seconds is None  # nothing has moved in the last seconds


def test_a_job_page_lists_failures_and_renames_and_exports_them(tmp_path: Path) -> None:
    with open_state(tmp_path / "s.db") as store:
        job = store.ensure_job("k", "/src", "https://t")
        rnd = store.start_round(job.id)
        for name, status, code, message in (
            (b"b.doc", ItemStatus.FAILED, "accessDenied", "PUT https://h/u?tempauth=XYZ: 403"),
            (b"a.txt", ItemStatus.FAILED, "READ_ERROR", "I/O error"),
            (b"long", ItemStatus.BLOCKED, "PATH_TOO_LONG", "path over 400 characters"),
        ):
            row = store.upsert_item(
                job.id, name, "file", status=ItemStatus.PENDING, round_id=rnd.id
            )
            store.record_outcome(row, round_id=rnd.id, status=status, code=code, message=message)
        row = store.upsert_item(job.id, b"x:y", "file", status=ItemStatus.PENDING, round_id=rnd.id)
        store.record_done(
            row, round_id=rnd.id, item_id="i", etag=None, quick_xor="q", size=1, mtime_ns=1,
            note_code="INVALID_CHARACTER", note="':' replaced",
        )  # fmt: skip
        store.flush()
        details = job_details(store, job.id)
        filtered = job_details(store, job.id, "denied")
        csv_text = failures_csv(store, job.id).decode("utf-8-sig")
    assert details is not None and filtered is not None
    assert [f.path for f in details.failures] == ["a.txt", "b.doc", "long"]
    assert details.failures[2].status == "Not migrated" and details.failures_total == 3
    assert [f.path for f in filtered.failures] == ["b.doc"]
    assert "XYZ" not in filtered.failures[0].message
    assert [(r.source, r.rule) for r in details.renames] == [("x:y", "INVALID_CHARACTER")]
    lines = csv_text.split("\r\n")
    assert lines[0].startswith("Source path,Status,Result category,Error code,Message")
    assert len([line for line in lines if line]) == 4 and "XYZ" not in csv_text


@pytest.fixture
def store_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state" / "state.db"
    with open_state(path) as store:
        job_id = _job_with_a_round(store, "a", RoundStatus.COMPLETED)
        reports = tmp_path / "reports"
        reports.mkdir()
        (reports / "summary.json").write_text('{"ok": true}')
        (reports / "notes.txt").write_text("not a report file")
        store.set_round_reports(store.rounds(job_id)[0].id, str(reports))
    yield path


def test_the_server_only_reads_and_answers_on_this_machine(store_path: Path) -> None:
    with DashboardServer(store_path, port=0, interval=0.2) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert server.token is None and server.url == f"{base}/"
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "jobs.csv#a" in page.text
        assert "'self'" in page.headers["content-security-policy"]
        assert httpx.post(base + "/").status_code == 405
        assert httpx.delete(base + "/jobs/1").status_code == 405
        assert httpx.get(base + "/", headers={"Host": "attacker.example"}).status_code == 403
        report = httpx.get(base + "/jobs/1/rounds/1/summary.json")
        assert report.status_code == 200 and report.json() == {"ok": True}
        assert "sandbox" in report.headers["content-security-policy"]
        assert httpx.get(base + "/jobs/1/rounds/1/notes.txt").status_code == 404
        assert httpx.get(base + "/jobs/1/rounds/1/..%2F..%2Fstate%2Fstate.db").status_code == 404
        assert httpx.get(base + "/static/dashboard.js").status_code == 200
        assert httpx.get(base + "/jobs/9").status_code == 404
        with httpx.stream("GET", base + "/events?view=overview", timeout=10) as events:
            lines = events.iter_lines()
            assert next(lines) == "retry: 3000"
            assert next(lines) == ""
            assert next(lines) == "event: update"
            assert '"files":"4 of 10"' in next(lines)


def test_beyond_this_machine_a_token_is_needed(store_path: Path) -> None:
    with DashboardServer(store_path, host="0.0.0.0", port=0, token="s3cret-token") as server:  # noqa: S104
        base = f"http://127.0.0.1:{server.port}"
        assert server.url.endswith(f":{server.port}/?token=s3cret-token")
        refused = httpx.get(base + "/")
        assert refused.status_code == 401 and "token" in refused.text.lower()
        assert "jobs.csv#a" not in refused.text
        assert httpx.get(base + "/events").status_code == 401
        assert httpx.get(base + "/?token=wrong").status_code == 401
        first = httpx.get(base + "/jobs/1?token=s3cret-token")
        assert first.status_code == 303 and first.headers["location"] == "/jobs/1"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        with httpx.Client(base_url=base, cookies=first.cookies) as client:
            assert client.get("/").status_code == 200
        bearer = httpx.get(base + "/", headers={"Authorization": "Bearer s3cret-token"})
        assert bearer.status_code == 200
