"""`moderation models ...`: list, show, promote, rollback."""

from __future__ import annotations

import argparse
import json

from models.errors import NoActiveModelError
from models.registry import Registry


def _active(registry: Registry) -> str | None:
    try:
        return registry.active_id()
    except NoActiveModelError:
        return None


def _headline(metrics: dict[str, object]) -> str:
    value = metrics.get("macro_roc_auc")
    return f"{value:.3f}" if isinstance(value, float) else "-"


def run(args: argparse.Namespace, registry: Registry) -> int:
    """Dispatch one `models` action; returns the exit code."""
    action = args.models_command
    if action == "list":
        active = _active(registry)
        infos = registry.list()
        if not infos:
            print("no models; train one with `moderation train --kind linear`")
            return 0
        print(f"{'':2}{'id':<36} {'kind':<12} {'created':<20} {'macro AUC':>9}  source")
        for info in infos:
            mark = "* " if info.id == active else "  "
            source = "shipped" if registry.is_shipped(info.id) else "local"
            print(
                f"{mark}{info.id:<36} {info.kind:<12} {info.created_at[:19]:<20} {_headline(info.metrics):>9}  {source}"
            )
        return 0
    if action == "show":
        info = registry.get(args.model_id)
        data = info.to_json()
        data["active"] = info.id == _active(registry)
        data["path"] = str(info.path)
        data.pop("calibration", None)
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    if action == "promote":
        previous = registry.promote(args.model_id)
        print(f"active model: {args.model_id} (previous: {previous or 'none'})")
        return 0
    if action == "rollback":
        restored = registry.rollback()
        print(f"active model: {restored}")
        return 0
    raise AssertionError(f"unhandled models action {action}")
