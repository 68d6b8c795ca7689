from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from service.storage.db import Database
from service.storage.repository import QueuePosition
from service.storage.tables import ApiKeyRow, CommentRow, OutboxRow, utcnow


def _comment(
    external_id: str, priority: float, flagged: list[str], minutes: int = 0, site: str = "s"
) -> CommentRow:
    at = utcnow() - timedelta(minutes=minutes)
    return CommentRow(
        site=site,
        external_id=external_id,
        text=f"text {external_id}",
        meta={"k": [1, 2]},
        status="pending",
        decision="review",
        scores={label: priority for label in flagged},
        flagged=flagged,
        spans=[],
        reasons=[],
        priority=priority,
        needs_review=True,
        created_at=at,
        updated_at=at,
    )


def test_site_and_external_id_are_unique(database: Database) -> None:
    with database.transaction() as repo:
        repo.add_comment(_comment("a", 0.5, []))
        repo.add_comment(_comment("a", 0.5, [], site="other"))
    with pytest.raises(IntegrityError), database.transaction() as repo:
        repo.add_comment(_comment("a", 0.5, []))


def test_queue_orders_filters_and_pages(database: Database) -> None:
    with database.transaction() as repo:
        repo.add_comment(_comment("low", 0.6, ["spam"], minutes=1))
        repo.add_comment(_comment("high", 0.9, ["toxicity", "insult"], minutes=2))
        repo.add_comment(_comment("tie", 0.6, ["toxicity"], minutes=3))
        repo.add_comment(_comment("other-site", 0.99, ["toxicity"], site="x"))
        done = repo.add_comment(_comment("done", 0.95, ["toxicity"]))
        done.needs_review = False
        repo.save_scores(done)
    with database.transaction() as repo:
        ids = [r.external_id for r in repo.queue("s", sort="priority", limit=10)]
        assert ids == ["high", "low", "tie"]  # equal priorities: insertion order
        assert [r.external_id for r in repo.queue("s", sort="oldest", limit=10)] == ["tie", "high", "low"]
        assert [r.external_id for r in repo.queue("s", sort="priority", limit=10, label="toxicity")] == [
            "high",
            "tie",
        ]
        first = repo.queue("s", sort="priority", limit=1)[0]
        after = QueuePosition(first.priority, first.created_at, first.id)
        assert [r.external_id for r in repo.queue("s", sort="priority", limit=10, after=after)] == [
            "low",
            "tie",
        ]
        assert repo.queue_depths() == {"s": 3, "x": 1}


def test_changing_flags_rewrites_the_label_index(database: Database) -> None:
    with database.transaction() as repo:
        row = repo.add_comment(_comment("a", 0.9, ["toxicity"]))
        row.flagged, row.scores = ["spam"], {"spam": 0.7}
        repo.save_scores(row)
    with database.transaction() as repo:
        assert repo.queue("s", sort="priority", limit=5, label="toxicity") == []
        assert len(repo.queue("s", sort="priority", limit=5, label="spam")) == 1


def test_claims_are_replaced_in_place(database: Database) -> None:
    now = utcnow()
    with database.transaction() as repo:
        row = repo.add_comment(_comment("a", 0.9, ["toxicity"]))
        repo.put_claim(row.id, "k1", now, timedelta(minutes=5))
    with database.transaction() as repo:
        claim = repo.put_claim(row.id, "k2", now + timedelta(minutes=6), timedelta(minutes=5))
        assert claim.key_id == "k2" and claim.expires_at == now + timedelta(minutes=11)
        assert list(repo.claims([row.id])) == [row.id]
        repo.delete_claim(row.id)
        assert repo.get_claim(row.id) is None


def _outbox(site: str = "s", minutes_ago: int = 0) -> OutboxRow:
    now = utcnow()
    return OutboxRow(
        site=site,
        event="comment.decided",
        body="{}",
        state="pending",
        attempts=0,
        next_attempt_at=now - timedelta(minutes=minutes_ago),
        created_at=now,
    )


def test_outbox_lease_and_record(database: Database) -> None:
    now = utcnow()
    with database.transaction() as repo:
        repo.enqueue(_outbox(minutes_ago=1))
        repo.enqueue(_outbox(minutes_ago=-10))  # not due yet
    with database.transaction() as repo:
        leased = repo.lease_due(now, 10, timedelta(minutes=2))
        assert [row.attempts for row in leased] == [0]
    with database.transaction() as repo:
        assert repo.lease_due(now, 10, timedelta(minutes=2)) == []  # leased rows are skipped
        repo.record_delivery(
            leased[0].id, now=now, delivered=False, status=500, error="HTTP 500", next_attempt_at=now
        )
    with database.transaction() as repo:
        (row,) = repo.lease_due(now, 10, timedelta(minutes=2))
        repo.record_delivery(row.id, now=now, delivered=True, status=204, error=None, next_attempt_at=None)
    with database.transaction() as repo:
        rows = repo.deliveries("s", 10)
        assert [(r.state, r.attempts) for r in rows] == [("pending", 0), ("delivered", 2)]
        assert [r.state for r in repo.deliveries("s", 10, state="delivered")] == ["delivered"]


def test_outbox_lease_skips_rows_locked_by_another_worker(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite serialises whole transactions instead")
    now = utcnow()
    with database.transaction() as repo:
        repo.enqueue(_outbox(minutes_ago=1))
        repo.enqueue(_outbox(minutes_ago=1))
    with database.transaction() as first:
        mine = first.lease_due(now, 1, timedelta(minutes=2))
        with database.transaction() as second:  # another worker, while the first holds its lock
            theirs = second.lease_due(now, 10, timedelta(minutes=2))
        assert len(mine) == len(theirs) == 1 and mine[0].id != theirs[0].id


def test_webhooks_policies_and_keys(database: Database) -> None:
    now = utcnow()
    with database.transaction() as repo:
        repo.put_webhook("s", "http://a", "secret-1", now)
        repo.put_webhook("s", "http://b", "secret-2", now)
        repo.put_policy("s", {"mode": "post"}, "key:1", now)
        repo.put_policy("s", {"mode": "pre"}, "key:2", now)
        repo.add_key(ApiKeyRow(id="k", key_hash="h" * 64, role="cms", site="s", created_at=now))
    with database.transaction() as repo:
        hook = repo.get_webhook("s")
        assert hook is not None and (hook.url, hook.secret) == ("http://b", "secret-2")
        policy = repo.get_policy("s")
        assert policy is not None and policy.policy == {"mode": "pre"} and policy.updated_by == "key:2"
        assert repo.delete_webhook("s") and not repo.delete_webhook("s")
        key = repo.key_by_hash("h" * 64)
        assert key is not None and key.site == "s" and [k.id for k in repo.api_keys()] == ["k"]
        assert repo.get_policy("nope") is None and repo.key_by_hash("x") is None
