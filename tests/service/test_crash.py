"""Crash safety: kill -9 the server while comments stream in, restart it, lose nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from service.auth import Role
from service.storage.db import Database
from service.storage.tables import CommentEventRow, CommentRow, OutboxRow
from service.webhooks import BATCH
from tests.conftest import CLEAN, TOXIC
from tests.service.servers import Receiver, Server, make_keys, server_env, servers

pytestmark = pytest.mark.slow

SITE = "example"
THREADS = 4
KILL_AFTER = 40  # acknowledged comments before the kill
TEXTS = TOXIC + CLEAN


def _text(number: int) -> str:
    return f"{TEXTS[number % len(TEXTS)]} ({number})"


class Submitter:
    """Client threads that submit comments until the server stops answering."""

    def __init__(self, url: str, key: str):
        self.url, self.key = url, key
        self.acked: list[str] = []
        self.attempted: list[str] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.enough = threading.Event()

    def run(self, worker: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0) as client:
            for i in range(10_000):
                comment_id = f"c-{worker}-{i}"
                with self.lock:
                    self.attempted.append(comment_id)
                body = {"site": SITE, "id": comment_id, "text": _text(i)}
                try:
                    response = client.post("/v1/comments", json=body)
                except httpx.HTTPError:
                    return  # the server is gone: this request's outcome is unknown
                with self.lock:
                    if response.status_code in (200, 201):
                        self.acked.append(comment_id)
                        if len(self.acked) >= KILL_AFTER:
                            self.enough.set()
                    else:
                        self.failures.append(f"{comment_id}: {response.status_code} {response.text}")
                        return


def _wait_delivered(database: Database, receiver: Receiver, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.transaction() as repo:
            states = Counter(repo.session.scalars(select(OutboxRow.state)))
        if states and set(states) == {"delivered"}:
            return
        time.sleep(0.2)
    raise AssertionError(f"outbox not delivered after {timeout}s: {dict(states)}")


def test_kill_9_mid_stream_loses_no_comment_and_no_delivery(
    tmp_path: Path, database_url: str, tiny_model_id: str
) -> None:
    keys = make_keys(database_url, {"cms": (Role.cms, None), "admin": (Role.admin, None)})
    env = server_env(
        tmp_path,
        tmp_path / "registry",
        database_url,
        # A delivery taken by the killed process is retried by the next one after this lease.
        MODERATION_WEBHOOK_LEASE_SECONDS="1",
    )
    first = Server(env, tmp_path / "server.log")
    second = Server(env, tmp_path / "server.log")
    database = Database.from_url(database_url)
    with Receiver(delay=0.02) as receiver, servers(first, second):
        first.start()
        response = httpx.put(
            f"{first.url}/v1/sites/{SITE}/webhook",
            json={"url": receiver.url},
            headers={"Authorization": f"Bearer {keys['admin']}"},
        )
        assert response.status_code == 200, response.text

        submitter = Submitter(first.url, keys["cms"])
        threads = [threading.Thread(target=submitter.run, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            assert submitter.enough.wait(60), first.output()
        finally:
            first.kill()
            for thread in threads:
                thread.join(30)
        assert not submitter.failures, submitter.failures
        acked = set(submitter.acked)

        second.start()
        try:
            # Every comment the CMS got a 2xx for is there exactly once, with one "submitted" event.
            with database.transaction() as repo:
                stored = Counter(
                    repo.session.scalars(select(CommentRow.external_id).where(CommentRow.site == SITE))
                )
                submitted = Counter(
                    repo.session.scalars(
                        select(CommentRow.external_id)
                        .join(CommentEventRow, CommentEventRow.comment_id == CommentRow.id)
                        .where(CommentEventRow.action == "submitted")
                    )
                )
            assert acked <= set(stored), sorted(acked - set(stored))
            assert set(stored.values()) == {1}
            assert set(submitted.values()) == {1} and set(submitted) == set(stored)

            # The CMS retries what it never got an answer for; nothing is stored twice.
            with httpx.Client(
                base_url=second.url, headers={"Authorization": f"Bearer {keys['cms']}"}, timeout=10.0
            ) as client:
                for comment_id in submitter.attempted:
                    number = int(comment_id.rsplit("-", 1)[1])
                    body = {"site": SITE, "id": comment_id, "text": _text(number)}
                    response = client.post("/v1/comments", json=body)
                    assert response.status_code == (200 if comment_id in stored else 201), response.text

            _wait_delivered(database, receiver)
            with database.transaction() as repo:
                outbox = {row.id: row.comment_id for row in repo.session.scalars(select(OutboxRow))}
                comments = repo.session.scalar(select(func.count()).select_from(CommentRow))
        finally:
            second.stop()
            database.dispose()

        # One decision per comment, each delivered (at least once: a delivery cut off by the kill
        # is sent again, with the same X-Moderation-Delivery id for the receiver to drop).
        assert comments == len(set(submitter.attempted))
        assert len(outbox) == comments
        counts = receiver.counts()
        assert set(counts) == {str(outbox_id) for outbox_id in outbox}
        assert {body["comment_id"] for body in receiver.bodies()} == set(submitter.attempted)
        # Only the batch the killed process had taken can arrive twice.
        assert sum(counts.values()) - len(counts) <= BATCH, counts
