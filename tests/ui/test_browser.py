"""The review UI in a real browser: Debian's Chromium driven by Playwright against a real server.

Each test starts the service (uvicorn in a thread, SQLite in tmp_path, the shipped linear model),
submits comments through the /v1 API as the CMS would, and works the UI as a moderator or admin.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.service.servers import Receiver
from tests.ui.conftest import SITE, Live

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Texts the shipped linear model sends to review (flagged, below the reject threshold).
FLAGGED = [
    "You are an idiot and nobody wants you here",
    "Shut up, moron.",
    "you are pathetic",
    "This is crap journalism",
]


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies of its own)."""
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    made.set_default_timeout(15_000)
    yield made
    made.close()


def sign_in(page: Page, live: Live, who: str) -> None:
    page.goto(f"{live.url}/ui/login")
    page.get_by_label("API key").fill(live.keys[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/queue**")


def refs(page: Page) -> list[str]:
    """The queue's comments in page order, as 'site/id'."""
    found: list[str] = page.locator("#queue .item").evaluate_all("items => items.map(i => i.dataset.ref)")
    return found


def item(page: Page, ref: str) -> Any:
    return page.locator(f'.item[data-ref="{ref}"]')


def expect_current(page: Page, ref: str) -> None:
    expect(item(page, ref)).to_have_attribute("aria-current", "true")
    expect(item(page, ref).locator("[data-claim]")).to_contain_text("Claimed by you")


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def submit_flagged(live: Live, count: int) -> None:
    for i in range(count):
        assert live.submit(f"c{i}", FLAGGED[i])["status"] == "pending"


def test_sign_in_and_work_through_the_queue_with_the_keyboard(live: Live, context: BrowserContext) -> None:
    submit_flagged(live, 4)
    page = context.new_page()
    sign_in(page, live, "moderator")
    order = refs(page)
    assert sorted(order) == [f"{SITE}/c{i}" for i in range(4)]
    expect_current(page, order[0])  # the first comment is claimed on opening the page

    page.keyboard.press("j")
    expect_current(page, order[1])
    wait_for(lambda: live.comment(order[0].split("/")[1])["claim"] is None)  # moving on released it
    page.keyboard.press("k")
    expect_current(page, order[0])

    page.keyboard.press("a")
    expect(item(page, order[0])).to_be_hidden()
    expect(page.locator("#undo-bar")).to_contain_text("Approved 1 comment.")
    expect_current(page, order[1])
    page.keyboard.press("r")
    expect(item(page, order[1])).to_be_hidden()
    expect(page.locator("#undo-bar")).to_contain_text("Rejected 1 comment.")
    expect_current(page, order[2])

    # e: a reason for the current comment; Escape leaves the field, r rejects with it.
    page.keyboard.press("e")
    expect(item(page, order[2]).locator("[data-reason]")).to_be_focused()
    page.keyboard.type("personal attack")
    page.keyboard.press("Enter")  # does not submit
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    expect(item(page, order[2])).to_be_hidden()
    expect_current(page, order[3])

    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    wait_for(lambda: live.comment(order[2].split("/")[1])["status"] == "rejected")
    statuses = {ref: live.comment(ref.split("/")[1]) for ref in order}
    assert statuses[order[0]]["status"] == "approved" and statuses[order[1]]["status"] == "rejected"
    assert live.comment(order[2].split("/")[1])["history"][-1]["reason"] == "personal attack"
    assert live.comment(order[3].split("/")[1])["claim"]["claimed_by"] == live.key_ids["moderator"]


def test_bulk_reject_then_undo(live: Live, context: BrowserContext) -> None:
    submit_flagged(live, 3)
    page = context.new_page()
    sign_in(page, live, "moderator")
    order = refs(page)
    expect_current(page, order[0])
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
    page.keyboard.press("R")
    expect(page.locator("#undo-bar")).to_contain_text("Rejected 2 comments.")
    for ref in order[:2]:
        expect(item(page, ref)).to_be_hidden()
        assert live.comment(ref.split("/")[1])["status"] == "rejected"
    expect_current(page, order[2])

    page.keyboard.press("u")
    expect(page.locator("#undo-bar")).to_contain_text("Returned 2 comments to the queue.")
    for ref in order[:2]:
        expect(item(page, ref)).to_be_visible()
        comment = live.comment(ref.split("/")[1])
        assert comment["status"] == "pending" and comment["history"][-1]["action"] == "undone"
    expect_current(page, order[0])

    # The same with the mouse: tick two boxes, then the button.
    item(page, order[1]).get_by_role("checkbox").check()
    item(page, order[2]).get_by_role("checkbox").check()
    page.get_by_role("button", name="Reject selected").click()
    expect(page.locator("#undo-bar")).to_contain_text("Rejected 2 comments.")
    assert [live.comment(ref.split("/")[1])["status"] for ref in order] == ["pending", "rejected", "rejected"]


def test_undo_calls_back_the_webhook_within_the_window(make_live: Any, context: BrowserContext) -> None:
    live: Live = make_live(webhooks_enabled=True, webhook_poll_seconds=0.1, undo_seconds=3)
    with Receiver() as receiver:
        response = live.http.put(
            f"/v1/sites/{SITE}/webhook",
            json={"url": receiver.url},
            headers={"Authorization": f"Bearer {live.keys['admin']}"},
        )
        assert response.status_code == 200
        submit_flagged(live, 1)
        wait_for(lambda: len(receiver.bodies()) == 1)  # the automatic "review" decision
        page = context.new_page()
        sign_in(page, live, "moderator")
        expect_current(page, f"{SITE}/c0")
        page.keyboard.press("a")
        expect(page.locator("#undo-bar")).to_contain_text("Approved 1 comment.")
        page.keyboard.press("u")
        expect(page.locator("#undo-bar")).to_contain_text("Returned 1 comment to the queue.")
        time.sleep(3.5)  # past the window: the cancelled delivery never goes out
        assert [body["source"] for body in receiver.bodies()] == ["auto"]
        assert live.comment("c0")["status"] == "pending"

        page.keyboard.press("r")
        expect(page.locator("#undo-bar")).to_contain_text("Rejected 1 comment.")
        wait_for(lambda: len(receiver.bodies()) == 2)
        delivered = receiver.bodies()[-1]
        assert (delivered["source"], delivered["decision"]) == ("moderator", "reject")
        page.goto(f"{live.url}/ui/comments/{SITE}/c0")
        deliveries = page.get_by_role("region", name="Webhook deliveries")
        expect(deliveries).to_contain_text("cancelled")
        expect(deliveries).to_contain_text("delivered")
        history = page.get_by_role("region", name="History")
        expect(history).to_contain_text("undone")


def test_a_claim_conflict_between_two_browsers(live: Live, browser: Browser) -> None:
    submit_flagged(live, 2)
    contexts = [browser.new_context(), browser.new_context()]
    try:
        mo, nina = (c.new_page() for c in contexts)
        sign_in(mo, live, "moderator")
        order = refs(mo)
        expect_current(mo, order[0])

        sign_in(nina, live, "moderator2")
        held = item(nina, order[0])
        expect(held.locator("[data-claim]")).to_contain_text(
            f"Held by Mo (key {live.key_ids['moderator']}) until"
        )
        expect(held).to_have_class(re.compile(r"\bheld\b"))
        nina.keyboard.press("a")  # refused: Mo holds it; the comment comes back with the reason
        expect(held.locator("[data-error]")).to_contain_text("is claimed by key")
        expect(held).to_be_visible()
        assert live.comment(order[0].split("/")[1])["status"] == "pending"

        nina.keyboard.press("j")
        expect_current(nina, order[1])
        # The claim is a request of its own: wait until the server has granted it.
        expect(item(nina, order[1]).locator("[data-claim]")).to_contain_text("Claimed by you")
        mo.keyboard.press("j")  # now Mo meets Nina's claim
        expect(item(mo, order[1]).locator("[data-claim]")).to_contain_text("Held by Nina")

        mo.keyboard.press("k")
        expect_current(mo, order[0])
        mo.keyboard.press("r")
        expect(mo.locator("#undo-bar")).to_contain_text("Rejected 1 comment.")
        assert live.comment(order[0].split("/")[1])["status"] == "rejected"
    finally:
        for made in contexts:
            made.close()


def test_an_admin_lowers_a_threshold_and_the_next_comment_is_queued(
    live: Live, context: BrowserContext
) -> None:
    text = "I will find you and hurt you"  # toxicity about 0.39: under the model's 0.52
    assert live.submit("before", text)["status"] == "approved"
    page = context.new_page()
    sign_in(page, live, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sites").click()
    page.get_by_role("link", name=SITE, exact=True).click()
    page.get_by_label("toxicity review threshold").fill("0.3")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator(".notice")).to_contain_text("Policy saved")
    expect(page.get_by_label("toxicity review threshold")).to_have_value("0.3")

    after = live.submit("after", text)
    assert after["status"] == "pending" and "toxicity" in after["flagged"]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queue").click()
    queued = item(page, f"{SITE}/after")
    expect(queued).to_be_visible()
    expect(queued.locator(".chip-toxicity")).to_contain_text("toxicity")
    expect(item(page, f"{SITE}/before")).to_have_count(0)


def test_a_comment_with_markup_is_shown_as_text(live: Live, context: BrowserContext) -> None:
    text = (
        "<script>window.pwned = true; alert('xss')</script>"
        '<img src=x onerror="window.pwned = true"> <b>bold</b> you stupid idiot'
    )
    assert live.submit("xss", text, author="<i>mallory</i>")["status"] == "pending"
    dialogs: list[str] = []
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, live, "moderator")
    shown = item(page, f"{SITE}/xss")
    expect(shown.locator(".text")).to_have_text(text)
    assert shown.locator(".text script, .text img, .text b").count() == 0
    assert shown.locator(".text mark").count() >= 1  # highlighted spans are still marked
    expect(shown.locator(".context")).to_contain_text("<i>mallory</i>")

    page.keyboard.press("o")
    page.wait_for_url(f"**/ui/comments/{SITE}/xss")
    expect(page.locator("article .text")).to_have_text(text)
    assert page.locator("article .text script, article .text img").count() == 0
    assert page.evaluate("window.pwned") is None and dialogs == []


def test_an_open_comment_stays_claimed(make_live: Any, context: BrowserContext) -> None:
    live: Live = make_live(claim_ttl_seconds=2)
    submit_flagged(live, 2)
    page = context.new_page()
    sign_in(page, live, "moderator")
    first = refs(page)[0]
    expect_current(page, first)
    time.sleep(3.5)  # past the 2 s lease: the page renewed it
    claim = live.comment(first.split("/")[1])["claim"]
    assert claim["claimed_by"] == live.key_ids["moderator"]
    assert datetime.fromisoformat(claim["expires_at"]) > datetime.now(UTC)
    page.goto("about:blank")  # leaving the page gives the claim back
    wait_for(lambda: live.comment(first.split("/")[1])["claim"] is None)
