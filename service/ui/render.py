"""Templates and responses of the web UI.

Jinja2 autoescapes every value (and `StrictUndefined` turns a typo into an error, not an empty
string); no template marks comment text safe. The Content-Security-Policy allows scripts and
styles from /ui/static only, so even a markup injection could not run a script.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from models.labels import DEFINITIONS, LABEL_NAMES

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def waited(since: datetime, now: datetime) -> str:
    """A duration such as '45 s', '12 min', '3 h 5 min' or '2 d 4 h'."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def utc(value: datetime | None, seconds: bool = False) -> str:
    """A timestamp as '2026-11-25 20:55 UTC'."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def clock_time(value: datetime) -> str:
    """A time of day as '20:55:12 UTC'."""
    return value.astimezone(UTC).strftime("%H:%M:%S UTC")


def percent(value: float | None, digits: int = 0) -> str:
    """0.1234 as '12%'."""
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def url_with(path: str, **params: Any) -> str:
    """`path` with the query parameters that are not None (lists repeat the parameter)."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None or value == "":
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((name, str(item)))
    if not pairs:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode(pairs)}"


def make_templates() -> Jinja2Templates:
    """The template environment: autoescaping on, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(utc=utc, clock=clock_time, percent=percent)
    env.globals.update(
        LABELS=LABEL_NAMES, DEFINITIONS=DEFINITIONS, url_with=url_with, waited=waited, timedelta=timedelta
    )
    return Jinja2Templates(env=env)


def wants_json(request: Request) -> bool:
    """Whether the caller is the UI's JavaScript (fetch with Accept: application/json)."""
    return request.headers.get("accept", "").startswith("application/json")


def safe_next(target: str | None, default: str = "/ui/queue") -> str:
    """A redirect target inside the UI (never another origin)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def secure(response: Response) -> Response:
    """Add the UI's security headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
