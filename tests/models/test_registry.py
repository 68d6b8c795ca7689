from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.errors import ArtifactError, ModelNotFoundError, NoActiveModelError
from models.registry import Registry
from tests.conftest import store_tiny_model


def test_stage_publishes_complete_artifact(registry: Registry) -> None:
    artifact_id = store_tiny_model(registry)
    info = registry.get(artifact_id)
    assert info.kind == "linear"
    assert set(info.files) == {"model.joblib"}
    info.verify_files()
    assert [i.id for i in registry.list()] == [artifact_id]


def test_failed_training_leaves_nothing_and_keeps_active(registry: Registry, tiny_model_id: str) -> None:
    with pytest.raises(RuntimeError), registry.stage("linear") as staged:
        (staged.path / "model.joblib").write_bytes(b"half written")
        raise RuntimeError("killed mid-training")
    assert [p.name for p in registry.artifacts_dir.iterdir()] == [tiny_model_id]
    assert registry.active_id() == tiny_model_id


def test_stage_without_metadata_is_refused(registry: Registry) -> None:
    with pytest.raises(ArtifactError), registry.stage("linear"):
        pass
    assert list(registry.artifacts_dir.iterdir()) == []


def test_clean_staging_removes_leftovers(registry: Registry) -> None:
    registry.artifacts_dir.mkdir(parents=True)
    (registry.artifacts_dir / ".staging-linear-x-abc").mkdir()
    assert registry.clean_staging() == 1
    assert registry.list() == []


def test_promote_and_rollback(registry: Registry) -> None:
    first = store_tiny_model(registry)
    second = store_tiny_model(registry)
    with pytest.raises(NoActiveModelError):
        registry.active_id()
    assert registry.promote(first) is None
    assert registry.promote(second) == first
    assert registry.active_id() == second
    assert registry.rollback() == first
    assert registry.active_id() == first
    with pytest.raises(NoActiveModelError):
        registry.rollback()


def test_promote_refuses_corrupted_artifact(registry: Registry, tiny_model_id: str) -> None:
    other = store_tiny_model(registry)
    (registry.path(other) / "model.joblib").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="corrupted"):
        registry.promote(other)
    assert registry.active_id() == tiny_model_id


def test_unknown_model(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.get("linear-nope")
    with pytest.raises(ModelNotFoundError):
        registry.path("../etc")


def test_artifact_with_foreign_labels_is_refused(registry: Registry) -> None:
    artifact_id = store_tiny_model(registry)
    meta = registry.path(artifact_id) / "meta.json"
    data = json.loads(meta.read_text())
    data["labels"] = ["toxicity", "sarcasm"]
    meta.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="do not match the schema"):
        registry.get(artifact_id)
    assert registry.list() == []  # skipped, not crashing


def test_artifact_from_other_sklearn_is_refused(registry: Registry) -> None:
    artifact_id = store_tiny_model(registry)
    meta = registry.path(artifact_id) / "meta.json"
    data = json.loads(meta.read_text())
    data["versions"]["scikit-learn"] = "0.1.0"
    meta.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="scikit-learn"):
        registry.load(artifact_id)


def test_shipped_default_is_active_until_promotion(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    source = Registry(tmp_path / "build", shipped_dir=None)
    shipped_id = store_tiny_model(source)
    shipped.mkdir()
    source.path(shipped_id).rename(shipped / shipped_id)
    (shipped / "DEFAULT").write_text(shipped_id + "\n")
    registry = Registry(tmp_path / "registry", shipped_dir=shipped)
    assert registry.active_id() == shipped_id
    assert registry.is_shipped(shipped_id)
    local = store_tiny_model(registry)
    registry.promote(local)
    assert registry.rollback() == shipped_id


def test_unreadable_state_is_an_artifact_error(registry: Registry) -> None:
    registry.root.mkdir(parents=True)
    (registry.root / "state.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="state"):
        registry.active_id()
