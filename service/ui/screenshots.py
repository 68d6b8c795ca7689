"""`make screenshots`: serve demo data and save PNGs of the queue and the dashboard.

    python -m service.ui.screenshots [--out docs/screenshots] [--chromium /usr/bin/chromium]

Playwright (a dev dependency) drives Debian's Chromium; it never downloads a browser.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from models.registry import Registry
from service.app import create_app
from service.settings import Settings
from service.storage import migrate
from service.storage.db import Database
from service.storage.tables import utcnow
from service.ui.demo import seed
from service.ui.devserver import ThreadedServer

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network and a root user (see the machine notes in the README's UI section).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sign_in(page: Page, base_url: str, key: str) -> None:
    """Sign in through the form."""
    page.goto(f"{base_url}/ui/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/ui/queue**")


def take(out: Path, chromium: str, width: int, height: int) -> list[Path]:
    """Seed a fresh database, serve it and save the screenshots; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="moderation-screenshots-") as tmp:
        data = Path(tmp)
        url = f"sqlite:///{data / 'moderation.db'}"
        database = Database.from_url(url)
        migrate.upgrade(database.engine)
        registry = Registry(data / "registry")
        keys = seed(database, registry.load(), utcnow())
        database.dispose()
        settings = Settings(
            data_dir=data,
            database_url=url,
            webhooks_enabled=False,
            model_watch_seconds=0,
            rate_limit_per_second=0,
        )
        written = []
        with ThreadedServer(create_app(settings, registry)) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            sign_in(page, server.url, keys.moderator)
            page.wait_for_selector(".item[aria-current='true'] [data-claim]:not(:empty)")
            page.screenshot(path=out / "queue.png")
            page.goto(f"{server.url}/ui/dashboard")
            page.screenshot(path=out / "dashboard.png", full_page=True)
            written = [out / "queue.png", out / "dashboard.png"]
            browser.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `make screenshots`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNGs")
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium binary Playwright drives")
    parser.add_argument("--width", type=int, default=1280, help="viewport width")
    parser.add_argument("--height", type=int, default=900, help="viewport height")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not Path(args.chromium).is_file():
        print(f"error: no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 2
    for path in take(args.out, args.chromium, args.width, args.height):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
