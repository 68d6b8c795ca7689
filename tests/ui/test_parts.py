"""The UI's small parts: highlighting, chart geometry, the session secret, settings, the demo data."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.registry import Registry
from service.settings import Settings
from service.storage import migrate
from service.storage.db import Database
from service.ui.charts import column_chart, hbar_chart, nice_ceiling
from service.ui.demo import SITES, seed
from service.ui.highlight import Segment, segments
from service.ui.render import TEMPLATES_DIR, make_templates, safe_next, url_with, waited
from service.ui.session import SECRET_FILE, load_secret


def test_segments_cover_the_text_and_merge_overlaps() -> None:
    text = "you stupid idiot"
    spans = [
        {"label": "toxicity", "start": 4, "end": 16, "score": 0.9},
        {"label": "insult", "start": 11, "end": 16, "score": 0.8},
        {"label": "spam", "start": 20, "end": 30, "score": 0.1},  # past the end: dropped
        {"label": "spam", "start": 3, "end": 3, "score": 0.1},  # empty: dropped
    ]
    assert segments(text, spans) == [
        Segment("you "),
        Segment("stupid ", ("toxicity",)),
        Segment("idiot", ("insult", "toxicity")),
    ]
    assert "".join(s.text for s in segments(text, spans)) == text
    assert segments("", []) == []
    assert segments("<b>", [{"label": "toxicity", "start": -5, "end": 99}]) == [Segment("<b>", ("toxicity",))]


def test_chart_geometry() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 7, 12, 250)] == [1.0, 0.5, 1.0, 10.0, 20.0, 500.0]
    chart = hbar_chart("t", [("a", 5, "5"), ("b", 10, "10")])
    assert [bar.width for bar in chart.bars] == [chart.plot_width / 2, chart.plot_width]
    capped = hbar_chart("t", [("a", 2.0, "200%")], scale=1.0)
    assert capped.bars[0].width == capped.plot_width
    columns = column_chart("t", ["d1", "d2"], [("x", "cx", [1, 3]), ("y", "cy", [1, 0])])
    first, second = columns.columns
    assert first.total == 2 and second.total == 3
    assert first.segments[0].y + first.segments[0].height == columns.baseline
    assert second.segments[0].height == pytest.approx(3 * first.segments[0].height)
    assert [t.text for t in columns.ticks] == ["0", "1.25", "2.5", "3.75", "5"]


def test_helpers() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert [waited(now - timedelta(seconds=s), now) for s in (5, 120, 3600, 3900, 90000, 86400)] == [
        "5 s",
        "2 min",
        "1 h",
        "1 h 5 min",
        "1 d 1 h",
        "1 d",
    ]
    assert url_with("/ui/queue", site="a b", label=None, items=["x/1", "y/2"]) == (
        "/ui/queue?site=a+b&items=x%2F1&items=y%2F2"
    )
    assert url_with("/ui/queue?site=a", cursor="c") == "/ui/queue?site=a&cursor=c"
    assert [safe_next(t) for t in ("/ui/dashboard", "https://x", "//x", "/ui\\x", None)] == [
        "/ui/dashboard",
        "/ui/queue",
        "/ui/queue",
        "/ui/queue",
        "/ui/queue",
    ]


def test_the_session_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = load_secret(settings)
    assert len(first) >= 32 and load_secret(settings) == first
    mode = stat.S_IMODE((tmp_path / "data" / SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    given = "correct-horse-battery-staple-1234567890"
    assert load_secret(Settings(data_dir=tmp_path / "data", session_secret=given)) == given


@pytest.mark.parametrize("secret", ["short", "x" * 64, "ab" * 20])
def test_weak_session_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="session_secret"):
        Settings(session_secret=secret)


def test_settings_read_the_ui_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_SESSION_SECRET", "0123456789abcdefghijklmnopqrstuvwxyz")
    monkeypatch.setenv("MODERATION_UNDO_SECONDS", "4")
    settings = Settings()
    assert settings.session_secret is not None and settings.undo_seconds == 4
    assert "0123456789" not in repr(settings)  # a SecretStr is not printed


def test_the_demo_data_fills_queue_and_history(
    tmp_path: Path, registry: Registry, tiny_model_id: str
) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path / 'demo.db'}")
    migrate.upgrade(database.engine)
    keys = seed(database, registry.load(), datetime.now(UTC), days=3)
    with database.transaction() as repo:
        depths = repo.queue_depths()
        assert set(depths) == set(SITES) and all(n > 0 for n in depths.values())
        assert repo.reviewed(datetime.now(UTC) - timedelta(days=5))
        assert {key.name for key in repo.api_keys()} == {"Ada (admin)", "Mo", "Nina", "CMS"}
    assert keys.moderator.startswith("mk_")
    database.dispose()


def test_templates_escape_everything() -> None:
    assert make_templates().env.autoescape is True
    for template in TEMPLATES_DIR.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text, template.name
