"""Demo data for screenshots and trying the UI: two sites, two weeks of comments and decisions.

Everything goes through the service's own functions (comments.submit, review.decide, claim), so
the demo's history, flags and webhooks look exactly like real ones; only the clock is moved.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from models.scoring import Model
from service import comments, review
from service.auth import Principal, Role, create_key
from service.schemas import CommentCreate, DecisionRequest
from service.storage.db import Database
from service.storage.tables import CommentRow

SITES = ("daily-courier", "city-herald")
FLAGGED = (
    "You are an idiot and nobody wants you here",
    "Shut up, moron. Nobody asked for your opinion.",
    "This is crap journalism, the editor should be fired",
    "Buy cheap watches at www.example.com click here for the best deals",
    "The vaccine contains microchips to track you, wake up people",
    "the moon landing was faked by the government and they still lie about it",
    "you are pathetic, go back to your basement",
    "ISIS is an American project, they train them and give them weapons",
    "What a stupid take. <script>alert('hi')</script> Do some research.",
    "The mayor should resign, this bridge plan is a disaster",
)
REJECTED = (
    "you people are all idiots",
    "what a stupid article, the author is a fool",
)
CLEAN = (
    "Thanks for the reporting!",
    "Great piece, thank you for covering the council meeting.",
    "When does the council vote on the bridge?",
    "Interesting article about the bridge, I had no idea about the costs.",
    "My grandmother lived on that street, lovely to see the photos.",
    "Could you publish the full budget document?",
)
THREADS = {
    "daily-courier": (
        ("bridge-vote", "Council delays the bridge vote again"),
        ("health", "Vaccination clinic opens"),
    ),
    "city-herald": (("election", "Mayoral race: the candidates"), ("sports", "Derby ends in a draw")),
}


@dataclass(frozen=True)
class DemoKeys:
    """The demo's API keys (secrets)."""

    admin: str
    moderator: str
    moderator2: str
    cms: str


def _keys(database: Database) -> tuple[DemoKeys, dict[str, Principal]]:
    with database.transaction() as repo:
        made = {
            "admin": create_key(repo, Role.admin, name="Ada (admin)"),
            "moderator": create_key(repo, Role.moderator, name="Mo"),
            "moderator2": create_key(repo, Role.moderator, name="Nina"),
            "cms": create_key(repo, Role.cms, name="CMS"),
        }
    principals = {name: Principal(key.id, key.role, key.site) for name, key in made.items()}
    return DemoKeys(**{name: key.secret for name, key in made.items()}), principals


def _submit(
    database: Database,
    model: Model,
    principal: Principal,
    at: datetime,
    site: str,
    number: int,
    text: str,
    rng: random.Random,
) -> CommentRow:
    thread, title = rng.choice(THREADS[site])
    body = CommentCreate(
        site=site,
        id=f"c{number:04d}",
        text=text,
        thread=thread,
        author=f"reader{rng.randint(1, 12)}",
        metadata={"title": title, "url": f"https://{site}.example/{thread}"},
    )
    return comments.submit(database, model, None, body, principal, clock=_at(at)).comment


def _at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def seed(database: Database, model: Model, now: datetime, *, days: int = 14, seed: int = 7) -> DemoKeys:
    """Fill an empty, migrated database with demo keys, comments and decisions up to `now`."""
    rng = random.Random(seed)
    keys, who = _keys(database)
    number = 0
    for day in range(days - 1, 0, -1):
        for _ in range(rng.randint(6, 14)):
            number += 1
            at = now - timedelta(days=day, minutes=rng.randint(0, 600))
            site = rng.choice(SITES)
            pool = rng.choices((FLAGGED, REJECTED, CLEAN), weights=(0.55, 0.1, 0.35))[0]
            text = rng.choice(pool)
            comment = _submit(database, model, who["cms"], at, site, number, text, rng)
            if not comment.needs_review:
                continue
            decision: Literal["approve", "reject"] = "reject" if rng.random() < 0.55 else "approve"
            # Now and then a moderator corrects the labels, as the feedback loop expects.
            labels = ["spam"] if "watches" in text and rng.random() < 0.5 else None
            review.decide(
                database,
                site,
                comment.external_id,
                who[rng.choice(("moderator", "moderator2"))],
                DecisionRequest(decision=decision, labels=labels),
                at + timedelta(minutes=rng.randint(5, 90)),
            )
    # Today's queue: every flagged text once per site, submitted over the last hours.
    for site in SITES:
        for text in FLAGGED:
            number += 1
            _submit(
                database,
                model,
                who["cms"],
                now - timedelta(minutes=rng.randint(3, 300)),
                site,
                number,
                text,
                rng,
            )
    held = review.list_queue(database, SITES[0], sort="priority", limit=3, label=None, cursor=None).comments
    if len(held) > 2:
        review.claim(database, SITES[0], held[2].external_id, who["moderator2"], timedelta(minutes=5), now)
    return keys
