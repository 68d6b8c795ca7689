"""Stored rows to what the UI's templates show: queue entries, claims, history lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.labels import DEFINITIONS
from service.storage.repository import Repository
from service.storage.tables import ApiKeyRow, ClaimRow, CommentEventRow, CommentRow, OutboxRow
from service.ui.highlight import Segment, segments
from service.ui.render import clock_time, waited
from service.ui.session import Session

ACTOR_KEY_PREFIX = "key:"
_DONE = {"approve": "Approved {}.", "reject": "Rejected {}.", "undo": "Returned {} to the queue."}


@dataclass(frozen=True)
class Chip:
    """A flagged label with its score."""

    label: str
    score: float
    definition: str


@dataclass(frozen=True)
class ClaimInfo:
    """Who holds a comment, for how long, and whether it is the viewer."""

    holder: str
    mine: bool
    until: datetime

    @property
    def message(self) -> str:
        if self.mine:
            return f"Claimed by you until {clock_time(self.until)}"
        return f"Held by {self.holder} until {clock_time(self.until)}"


@dataclass(frozen=True)
class AuthorInfo:
    """The author's record on the site, not counting the comment at hand."""

    author: str
    rejected: int
    others: int


@dataclass(frozen=True)
class Entry:
    """A comment as the queue and the comment page show it."""

    row: CommentRow
    segments: list[Segment]
    chips: list[Chip]
    claim: ClaimInfo | None
    author: AuthorInfo | None
    waiting: str
    title: str | None
    link: str | None

    @property
    def ref(self) -> str:
        """'site/id', how forms name a comment (neither part may contain a slash)."""
        return f"{self.row.site}/{self.row.external_id}"

    @property
    def path(self) -> str:
        return f"/ui/comments/{self.row.site}/{self.row.external_id}"


@dataclass(frozen=True)
class HistoryLine:
    """One audit entry with its actor's display name."""

    event: CommentEventRow
    actor: str


def key_name(key_id: str, keys: Mapping[str, ApiKeyRow]) -> str:
    """'Alice (key 3f9a…)' when the key has a name, else 'key 3f9a…'."""
    row = keys.get(key_id)
    return f"{row.name} (key {key_id})" if row is not None and row.name else f"key {key_id}"


def actor_name(actor: str, keys: Mapping[str, ApiKeyRow]) -> str:
    """How the history shows an actor: a key's name, or 'automatic' for the service itself."""
    if actor.startswith(ACTOR_KEY_PREFIX):
        return key_name(actor.removeprefix(ACTOR_KEY_PREFIX), keys)
    return "automatic" if actor == "system" else actor


def claim_info(
    claim: ClaimRow | None, keys: Mapping[str, ApiKeyRow], session: Session, now: datetime
) -> ClaimInfo | None:
    """The active claim, if any."""
    if claim is None or claim.expires_at <= now:
        return None
    return ClaimInfo(
        holder=key_name(claim.key_id, keys),
        mine=claim.key_id == session.principal.key_id,
        until=claim.expires_at,
    )


def chips(row: CommentRow) -> list[Chip]:
    """The flagged labels, highest score first."""
    scores = row.scores or {}
    found = [Chip(label, scores.get(label, 0.0), DEFINITIONS.get(label, "")) for label in row.flagged]
    return sorted(found, key=lambda chip: -chip.score)


def article(meta: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The article title and an http(s) link, when the CMS sent them in the metadata."""
    title = meta.get("title") or meta.get("article_title")
    url = meta.get("url") or meta.get("article_url")
    link = url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
    return (str(title)[:300] if title else None), link


def entries(
    repo: Repository,
    rows: Sequence[CommentRow],
    claims: Mapping[int, ClaimRow],
    session: Session,
    now: datetime,
) -> list[Entry]:
    """Queue entries with author records and claim holders, in two queries for the whole page."""
    keys = repo.keys_by_id([claim.key_id for claim in claims.values()])
    records: dict[tuple[str, str], tuple[int, int]] = {}
    for site in {row.site for row in rows}:
        authors = [row.author for row in rows if row.site == site and row.author]
        for author, counts in repo.author_counts(site, authors).items():
            records[site, author] = counts
    out = []
    for row in rows:
        rejected, total = records.get((row.site, row.author or ""), (0, 1))
        title, link = article(row.meta or {})
        out.append(
            Entry(
                row=row,
                segments=segments(row.text, row.spans),
                chips=chips(row),
                claim=claim_info(claims.get(row.id), keys, session, now),
                author=AuthorInfo(row.author, rejected, max(0, total - 1)) if row.author else None,
                waiting=waited(row.created_at, now),
                title=title,
                link=link,
            )
        )
    return out


def history(repo: Repository, events: Sequence[CommentEventRow]) -> list[HistoryLine]:
    """History entries with the names of the keys that acted."""
    ids = [e.actor.removeprefix(ACTOR_KEY_PREFIX) for e in events if e.actor.startswith(ACTOR_KEY_PREFIX)]
    keys = repo.keys_by_id(ids)
    return [HistoryLine(event, actor_name(event.actor, keys)) for event in events]


def delivery_state(row: OutboxRow, now: datetime) -> str:
    """A webhook delivery's state in words."""
    if row.state == "delivered":
        return "delivered"
    if row.state == "failed":
        return "cancelled" if (row.last_error or "").startswith("cancelled") else "failed"
    if row.attempts:
        return f"retrying at {clock_time(row.next_attempt_at)}"
    if row.next_attempt_at > now:
        return f"scheduled for {clock_time(row.next_attempt_at)}"
    return "queued"


def notice_text(done: str | None, count: int, failed: int) -> str | None:
    """What the page says after a decision or an undo: 'Rejected 2 comments.'"""
    if done not in _DONE:
        return None
    comments = f"{count} comment{'s' if count != 1 else ''}"
    text = _DONE[done].format(comments) if count else ""
    if failed:
        text += f" {failed} could not be {'restored' if done == 'undo' else 'decided'} (see their pages)."
    return text.strip() or None
