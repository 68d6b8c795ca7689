"""Two server processes on one PostgreSQL schema: one review per comment, one delivery per decision."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service.auth import Role
from service.storage.db import Database
from service.storage.tables import CommentEventRow, CommentRow, OutboxRow
from tests.conftest import TOXIC
from tests.service.servers import Receiver, Server, make_keys, server_env, servers

pytestmark = pytest.mark.slow

SITE = "example"
COMMENTS = 40
MODERATORS_PER_SERVER = 2


def _wait_delivered(database: Database, expected: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    states: Counter[str] = Counter()
    while time.monotonic() < deadline:
        with database.transaction() as repo:
            states = Counter(repo.session.scalars(select(OutboxRow.state)))
        if states == {"delivered": expected}:
            return
        time.sleep(0.2)
    raise AssertionError(f"outbox not delivered after {timeout}s: {dict(states)} (want {expected})")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_processes_review_once_and_deliver_once(
    tmp_path: Path, database_url: str, tiny_model_id: str
) -> None:
    postgres_url = database_url
    moderators = [f"moderator{n}" for n in range(2 * MODERATORS_PER_SERVER)]
    keys = make_keys(
        postgres_url,
        {
            "cms": (Role.cms, None),
            "admin": (Role.admin, None),
            **{name: (Role.moderator, None) for name in moderators},
        },
    )
    # Poll often so that both processes keep racing for the same outbox rows.
    env = server_env(tmp_path, tmp_path / "registry", postgres_url, MODERATION_WEBHOOK_POLL_SECONDS="0.02")
    one, two = Server(env, tmp_path / "one.log"), Server(env, tmp_path / "two.log")
    database = Database.from_url(postgres_url)
    with Receiver() as receiver, servers(one, two):
        one.start()
        two.start()
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        response = httpx.put(f"{one.url}/v1/sites/{SITE}/webhook", json={"url": receiver.url}, headers=admin)
        assert response.status_code == 200, response.text

        # Toxic comments, submitted through both processes, all held for review.
        ids = [f"c-{n}" for n in range(COMMENTS)]
        cms = {"Authorization": f"Bearer {keys['cms']}"}
        for n, comment_id in enumerate(ids):
            body = {"site": SITE, "id": comment_id, "text": f"{TOXIC[n % len(TOXIC)]} ({n})"}
            response = httpx.post(f"{(one, two)[n % 2].url}/v1/comments", json=body, headers=cms)
            assert response.status_code == 201, response.text
            assert response.json()["status"] == "pending", response.text

        # Every moderator, half of them on each process, goes through the whole queue at once.
        claims: dict[str, list[str]] = {comment_id: [] for comment_id in ids}
        unexpected: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(len(moderators))

        def moderate(name: str, server: Server) -> None:
            headers = {"Authorization": f"Bearer {keys[name]}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
                start.wait()
                for comment_id in ids:
                    claimed = client.post(f"/v1/comments/{comment_id}/claim", params={"site": SITE})
                    if claimed.status_code == 409:
                        continue
                    decided = client.post(
                        f"/v1/comments/{comment_id}/decision",
                        params={"site": SITE},
                        json={"decision": "reject", "reason": f"by {name}"},
                    )
                    with lock:
                        if claimed.status_code != 200 or decided.status_code != 200:
                            unexpected.append(f"{name} {comment_id}: {claimed.text} {decided.text}")
                        claims[comment_id].append(name)

        threads = [
            threading.Thread(target=moderate, args=(name, (one, two)[n % 2]))
            for n, name in enumerate(moderators)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not unexpected, unexpected
        assert all(len(winners) == 1 for winners in claims.values()), claims
        assert len({winners[0] for winners in claims.values()}) > 1, "no race: one moderator took all"

        try:
            with database.transaction() as repo:
                decided = Counter(
                    repo.session.scalars(
                        select(CommentRow.external_id)
                        .join(CommentEventRow, CommentEventRow.comment_id == CommentRow.id)
                        .where(CommentEventRow.action.in_(["decided", "overridden"]))
                    )
                )
            assert decided == dict.fromkeys(ids, 1)
            # One delivery for each automatic decision and one for each moderator's.
            _wait_delivered(database, 2 * COMMENTS)
        finally:
            database.dispose()

        # Both processes ran the outbox; still each delivery arrived exactly once.
        counts = receiver.counts()
        assert len(counts) == 2 * COMMENTS
        assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v > 1}
        moderator_events = [body for body in receiver.bodies() if body["source"] == "moderator"]
        assert sorted(body["comment_id"] for body in moderator_events) == sorted(ids)
