from __future__ import annotations

import json

import pytest

from cli.main import main
from models.registry import Registry
from tests.conftest import store_tiny_model


def run(registry: Registry, *argv: str) -> int:
    return main(["--registry", str(registry.root), *argv])


def test_list_show_promote_rollback(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    first = store_tiny_model(registry)
    second = store_tiny_model(registry)
    # Tiny test models have no evaluation report: promoted over the gate, with a reason.
    assert run(registry, "models", "promote", first, "--force", "--reason", "test") == 0
    assert run(registry, "models", "promote", second, "--force", "--reason", "test") == 0
    capsys.readouterr()
    assert run(registry, "models", "list") == 0
    listing = capsys.readouterr().out
    assert f"* {second}" in listing and f"  {first}" in listing
    assert run(registry, "models", "show", first) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == first and shown["active"] is False and shown["kind"] == "linear"
    assert run(registry, "models", "rollback") == 0
    assert first in capsys.readouterr().out
    assert registry.active_id() == first


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "show", "linear-missing"], "no model 'linear-missing'"),
        (["models", "promote", "linear-missing"], "no model 'linear-missing'"),
        (["models", "rollback"], "nothing to roll back"),
    ],
)
def test_models_errors(
    registry: Registry, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(registry, *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["models", "frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["train", "--kind", "magic"])
    assert exc.value.code == 2
