"""The dashboard's figures: queue depth, decisions per day, flag rates, the model's precision in
practice (how often moderators confirm or overturn its flags) and the served model's metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from models.artifact import ArtifactInfo
from models.errors import ModerationError
from models.labels import LABEL_NAMES
from models.registry import Registry
from service.storage.repository import AUTOMATIC_ACTIONS, MODERATOR_ACTIONS, Repository
from service.ui.charts import ColumnChart, HBarChart, column_chart, hbar_chart
from service.ui.render import percent

DAYS = 14
WINDOW_DAYS = 30
SERIES = (
    ("approved by moderators", "moderator-approve"),
    ("rejected by moderators", "moderator-reject"),
    ("rejected automatically", "auto-reject"),
)


@dataclass
class Day:
    """Decisions made on one day (UTC)."""

    day: str
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class LabelPrecision:
    """Moderator decisions on comments the model flagged with a label."""

    label: str
    confirmed: int
    overturned: int
    missed: int

    @property
    def decided(self) -> int:
        return self.confirmed + self.overturned

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.decided if self.decided else None

    @property
    def overturn_rate(self) -> float | None:
        return self.overturned / self.decided if self.decided else None


@dataclass(frozen=True)
class ModelSummary:
    """The served model's metadata and evaluation, arranged for tables."""

    info: ArtifactInfo | None
    error: str | None
    per_label: list[tuple[str, dict[str, float]]]
    scalars: list[tuple[str, float]]
    groups: list[tuple[str, list[tuple[str, float]]]]
    chart: HBarChart | None


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard page shows."""

    depths: list[tuple[str, int]]
    depth_chart: HBarChart
    days: list[Day]
    day_chart: ColumnChart
    submitted: int
    flag_counts: dict[str, int]
    flag_chart: HBarChart
    precision: list[LabelPrecision]
    precision_chart: HBarChart
    model: ModelSummary
    window_days: int = WINDOW_DAYS


def _days(repo: Repository, now: datetime, site: str | None) -> list[Day]:
    start = (now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    names = [(start + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(DAYS)]
    days = {name: Day(name) for name in names}
    for day, action, decision, count in repo.decisions_per_day(start, site):
        if day not in days:
            continue
        if action in MODERATOR_ACTIONS:
            days[day].counts[f"moderator-{decision}"] += count
        elif action in AUTOMATIC_ACTIONS and decision in ("approve", "reject"):
            days[day].counts[f"auto-{decision}"] += count
        elif action == "undone":
            days[day].counts["undone"] += count
    return list(days.values())


def _precision(repo: Repository, since: datetime, site: str | None) -> list[LabelPrecision]:
    confirmed: dict[str, int] = defaultdict(int)
    overturned: dict[str, int] = defaultdict(int)
    missed: dict[str, int] = defaultdict(int)
    for decision, flagged, corrected in repo.reviewed(since, site):
        for label in flagged:
            # Corrected labels say exactly which flags were right; without them a rejection
            # confirms the model's flags and an approval overturns them.
            right = label in corrected if corrected is not None else decision == "reject"
            (confirmed if right else overturned)[label] += 1
        for label in corrected or ():
            if label not in flagged:
                missed[label] += 1
    return [
        LabelPrecision(label, confirmed[label], overturned[label], missed[label]) for label in LABEL_NAMES
    ]


def _is_per_label(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and set(value) <= set(LABEL_NAMES)
        and all(isinstance(v, int | float) for v in value.values())
    )


def model_summary(registry: Registry, model_id: str | None) -> ModelSummary:
    """The model's metrics: per-label ones as a table, the rest as lists."""
    if model_id is None:
        return ModelSummary(None, "no model is loaded", [], [], [], None)
    try:
        info = registry.get(model_id)
    except ModerationError as exc:
        return ModelSummary(None, str(exc), [], [], [], None)
    per_label = [(name, dict(value)) for name, value in info.metrics.items() if _is_per_label(value)]
    scalars = [(name, float(v)) for name, v in info.metrics.items() if isinstance(v, int | float)]
    groups = [
        (name, [(k, float(v)) for k, v in value.items() if isinstance(v, int | float)])
        for name, value in info.metrics.items()
        if isinstance(value, Mapping) and not _is_per_label(value)
    ]
    chart = None
    for preferred in ("f1", "roc_auc", "pr_auc"):
        values = dict(per_label).get(preferred)
        if values:
            chart = hbar_chart(
                f"{preferred} per label on the test splits",
                [(label, values[label], f"{values[label]:.3f}") for label in LABEL_NAMES if label in values],
                scale=1.0,
                css=lambda label: "metric",
            )
            break
    return ModelSummary(info, None, per_label, scalars, [g for g in groups if g[1]], chart)


def build(
    repo: Repository, registry: Registry, model_id: str | None, now: datetime, site: str | None = None
) -> Dashboard:
    """Compute the dashboard (a few aggregate queries), for all sites or for one."""
    depths = sorted(
        ((s, n) for s, n in repo.queue_depths().items() if site is None or s == site),
        key=lambda item: (-item[1], item[0]),
    )
    depth_chart = hbar_chart(
        "Comments awaiting review per site", [(name, n, str(n)) for name, n in depths], css=lambda s: "depth"
    )
    days = _days(repo, now, site)
    day_chart = column_chart(
        f"Decisions per day, last {DAYS} days (UTC)",
        [day.day[5:] for day in days],
        [(name, css, [day.counts[css] for day in days]) for name, css in SERIES],
    )
    since = now - timedelta(days=WINDOW_DAYS)
    submitted, flag_counts = repo.flag_counts(since, site)
    rates = {label: flag_counts.get(label, 0) / submitted if submitted else 0.0 for label in LABEL_NAMES}
    flag_chart = hbar_chart(
        f"Share of comments flagged per label, last {WINDOW_DAYS} days",
        [(label, rate, f"{percent(rate, 1)} ({flag_counts.get(label, 0)})") for label, rate in rates.items()],
        css=lambda label: "flag",
    )
    precision = _precision(repo, since, site)
    precision_chart = hbar_chart(
        f"Flags confirmed by moderators (precision in practice), last {WINDOW_DAYS} days",
        [
            (
                p.label,
                p.precision or 0.0,
                f"{percent(p.precision)} of {p.decided}" if p.decided else "no decisions",
            )
            for p in precision
        ],
        scale=1.0,
        css=lambda label: "precision",
    )
    return Dashboard(
        depths=depths,
        depth_chart=depth_chart,
        days=days,
        day_chart=day_chart,
        submitted=submitted,
        flag_counts=flag_counts,
        flag_chart=flag_chart,
        precision=precision,
        precision_chart=precision_chart,
        model=model_summary(registry, model_id),
    )
