from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from service.webhooks import backoff, sign, verify
from tests.service.conftest import SITE, Api, ApiFactory

SECRET = "s3cret-for-the-tests-0123456789"


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that fails its first `failures` requests."""

    failures: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    url: str = ""

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        self.requests.append((headers, body))
        status = 500 if len(self.requests) <= self.failures else 204
        self.answered.append(status)
        return status

    def wait_for(self, successes: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.answered.count(204) < successes:
            assert time.monotonic() < deadline, f"only {self.answered} after {timeout} s"
            time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/moderation"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


FAST = {
    "webhooks_enabled": True,
    "webhook_poll_seconds": 0.02,
    "webhook_backoff_seconds": 0.05,
    "webhook_backoff_max_seconds": 0.2,
    "webhook_timeout_seconds": 2.0,
}


def _set_webhook(api: Api, url: str, secret: str | None = SECRET) -> dict[str, Any]:
    body = {"url": url} if secret is None else {"url": url, "secret": secret}
    r = api.client.put(f"/v1/sites/{SITE}/webhook", json=body, headers=api.auth("admin"))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def _deliveries(api: Api) -> list[dict[str, Any]]:
    r = api.client.get("/v1/admin/webhooks/deliveries", params={"site": SITE}, headers=api.auth("admin"))
    assert r.status_code == 200
    result: list[dict[str, Any]] = r.json()
    return result


def test_sign_and_verify() -> None:
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"
    assert verify(SECRET, 1700000000, body, f"sha256={expected}")
    assert not verify(SECRET, 1700000001, body, f"sha256={expected}")


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 5, 30).total_seconds() for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


def test_decisions_are_delivered_signed(make_api: ApiFactory, receiver: Receiver) -> None:
    api = make_api(**FAST)
    _set_webhook(api, receiver.url)
    api.submit("c1", "you stupid idiot")
    receiver.wait_for(1)
    r = api.client.post(
        "/v1/comments/c1/decision",
        params={"site": SITE},
        json={"decision": "reject"},
        headers=api.auth("moderator"),
    )
    assert r.status_code == 200
    receiver.wait_for(2)

    events = []
    for headers, body in receiver.requests:
        timestamp = int(headers["x-moderation-timestamp"])
        assert abs(time.time() - timestamp) < 60
        assert verify(SECRET, timestamp, body, headers["x-moderation-signature"])
        assert headers["content-type"] == "application/json"
        events.append(json.loads(body))
    assert [(e["source"], e["status"], e["decision"]) for e in events] == [
        ("auto", "pending", "review"),
        ("moderator", "rejected", "reject"),
    ]
    assert all(e["comment_id"] == "c1" and e["site"] == SITE and "text" not in e for e in events)
    assert [(d["state"], d["attempts"], d["last_status"]) for d in _deliveries(api)] == [
        ("delivered", 1, 204)
    ] * 2


def test_failing_receiver_is_retried_until_it_recovers(make_api: ApiFactory, receiver: Receiver) -> None:
    receiver.failures = 2
    api = make_api(**FAST)
    _set_webhook(api, receiver.url)
    api.submit("c1", "thanks for the article")
    receiver.wait_for(1)
    assert receiver.answered == [500, 500, 204]
    (delivery,) = _deliveries(api)
    assert (delivery["state"], delivery["attempts"], delivery["last_status"], delivery["last_error"]) == (
        "delivered",
        3,
        204,
        None,
    )
    # Every retry carries the same body and delivery id, signed afresh.
    assert len({body for _, body in receiver.requests}) == 1
    assert len({h["x-moderation-delivery"] for h, _ in receiver.requests}) == 1


def test_unreachable_receiver_gives_up_after_max_attempts(make_api: ApiFactory) -> None:
    api = make_api(**FAST, webhook_max_attempts=3)
    _set_webhook(api, "http://127.0.0.1:1/nothing-listens-here")
    api.submit("c1", "thanks for the article")
    deadline = time.monotonic() + 10
    while (d := _deliveries(api)[0])["state"] == "pending":
        assert time.monotonic() < deadline, d
        time.sleep(0.05)
    assert (d["state"], d["attempts"], d["last_status"], d["next_attempt_at"]) == ("failed", 3, None, None)
    assert d["last_error"].startswith("ConnectError")


def test_delivery_is_durable_across_a_restart(
    make_api: ApiFactory, receiver: Receiver, sqlite_url: str
) -> None:
    # Written while no delivery task runs (a process that died before sending), sent by the next one.
    first = make_api()
    _set_webhook(first, receiver.url)
    first.submit("c1", "thanks for the article")
    assert [d["state"] for d in _deliveries(first)] == ["pending"]
    make_api(**FAST)
    receiver.wait_for(1)


def test_webhook_admin_routes(api: Api) -> None:
    created = _set_webhook(api, "https://cms.example.org/hook", secret=None)
    assert created["secret"].startswith("whsec_") and created["url"] == "https://cms.example.org/hook"
    r = api.client.get(f"/v1/sites/{SITE}/webhook", headers=api.auth("admin"))
    assert r.status_code == 200 and r.json()["secret"] is None
    assert api.client.get(f"/v1/sites/{SITE}/webhook", headers=api.auth("moderator")).status_code == 403
    for body in ({"url": "ftp://x"}, {"url": "not a url"}, {"url": "https://x", "secret": "short"}, {}):
        r = api.client.put(f"/v1/sites/{SITE}/webhook", json=body, headers=api.auth("admin"))
        assert r.status_code == 422, body
    assert api.client.delete(f"/v1/sites/{SITE}/webhook", headers=api.auth("admin")).status_code == 204
    r = api.client.delete(f"/v1/sites/{SITE}/webhook", headers=api.auth("admin"))
    assert r.status_code == 404 and r.json()["error"] == "webhook_not_found"
    r = api.client.get(f"/v1/sites/{SITE}/webhook", headers=api.auth("admin"))
    assert r.status_code == 404


def test_no_outbox_rows_without_a_webhook(api: Api) -> None:
    api.submit("c1", "thanks for the article")
    assert _deliveries(api) == []
    assert (
        api.client.get(
            "/v1/admin/webhooks/deliveries", params={"site": SITE}, headers=api.auth("moderator")
        ).status_code
        == 403
    )


def test_backoff_schedule_is_visible(make_api: ApiFactory) -> None:
    api = make_api(**{**FAST, "webhook_backoff_seconds": 600.0, "webhook_backoff_max_seconds": 3600.0})
    _set_webhook(api, "http://127.0.0.1:1/down")
    api.submit("c1", "thanks for the article")
    deadline = time.monotonic() + 10
    while (d := _deliveries(api)[0])["attempts"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert d["state"] == "pending"

    wait = datetime.fromisoformat(d["next_attempt_at"]) - datetime.fromisoformat(d["created_at"])
    assert timedelta(seconds=590) < wait < timedelta(seconds=620)
