"""The artifact store: the only code that reads or writes model folders.

Layout of a registry root::

    <root>/artifacts/<id>/meta.json, model files, MODEL_CARD.md, report.*
    <root>/state.json          {"active": id, "history": [previously active ids, oldest first],
                                "promotions": [log of promotions and rollbacks, oldest first]}

Artifacts shipped with the code live in `models/shipped/<id>/` (read-only); `models/shipped/DEFAULT`
names the one that is active until something is promoted. Writes are atomic: a new artifact is
built in a hidden staging folder and renamed into place only when complete, and state.json is
replaced with os.replace, so an interrupted training never leaves half an artifact or a changed
active model.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.artifact import ArtifactInfo, sha256_file
from models.errors import ArtifactError, ModelNotFoundError, NoActiveModelError
from models.scoring import Model

logger = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).parent / "shipped"
STATE_FILE = "state.json"
_STAGING_PREFIX = ".staging-"


def default_registry_dir(env: Mapping[str, str]) -> Path:
    """Registry root from MODERATION_REGISTRY_DIR, else $MODERATION_DATA_DIR/registry (default ./var)."""
    if env.get("MODERATION_REGISTRY_DIR"):
        return Path(env["MODERATION_REGISTRY_DIR"])
    return Path(env.get("MODERATION_DATA_DIR") or "var") / "registry"


def new_artifact_id(kind: str, now: datetime | None = None) -> str:
    """A sortable, unique artifact id such as `linear-20261125-183000-3f9a`."""
    now = now or datetime.now(UTC)
    return f"{kind}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class StagedArtifact:
    """A folder being written; its files become an artifact when the `stage` block exits cleanly."""

    id: str
    path: Path
    info: ArtifactInfo | None = None
    extra_files: list[str] = field(default_factory=list)


class Registry:
    """Lists, loads, stores, promotes and rolls back model artifacts."""

    def __init__(self, root: Path, shipped_dir: Path | None = SHIPPED_DIR):
        self.root = Path(root)
        self.shipped_dir = shipped_dir
        self.artifacts_dir = self.root / "artifacts"

    # ---- reading -------------------------------------------------------------------------

    def _candidates(self) -> list[Path]:
        dirs: list[Path] = []
        for base in (self.artifacts_dir, self.shipped_dir):
            if base is not None and base.is_dir():
                dirs.extend(p for p in sorted(base.iterdir()) if p.is_dir() and not p.name.startswith("."))
        return dirs

    def path(self, artifact_id: str) -> Path:
        """Folder of an artifact; raises ModelNotFoundError."""
        if not artifact_id or "/" in artifact_id or artifact_id.startswith("."):
            raise ModelNotFoundError(f"no model {artifact_id!r}")
        for base in (self.artifacts_dir, self.shipped_dir):
            if base is not None and (base / artifact_id / "meta.json").is_file():
                return base / artifact_id
        raise ModelNotFoundError(f"no model {artifact_id!r} in {self.root} or the shipped models")

    def get(self, artifact_id: str) -> ArtifactInfo:
        """Validated metadata of one artifact."""
        return ArtifactInfo.read(self.path(artifact_id))

    def list(self) -> list[ArtifactInfo]:
        """All readable artifacts, oldest first; unreadable folders are logged and skipped."""
        infos = []
        for directory in self._candidates():
            try:
                infos.append(ArtifactInfo.read(directory))
            except ArtifactError as exc:
                logger.warning("skipping unreadable artifact folder %s: %s", directory, exc)
        return sorted(infos, key=lambda i: (i.created_at, i.id))

    def is_shipped(self, artifact_id: str) -> bool:
        """Whether the artifact comes with the code rather than from local training."""
        return self.shipped_dir is not None and self.path(artifact_id).parent == self.shipped_dir

    def _state(self) -> dict[str, Any]:
        file = self.root / STATE_FILE
        if not file.exists():
            return {"active": None, "history": [], "promotions": []}
        try:
            state = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"registry state {file} is unreadable ({exc})") from None
        if not isinstance(state, dict):
            raise ArtifactError(f"registry state {file} is not an object")
        state.setdefault("history", [])
        state.setdefault("promotions", [])
        return state

    def shipped_default(self) -> str | None:
        """Id named by models/shipped/DEFAULT, if any."""
        if self.shipped_dir is None:
            return None
        file = self.shipped_dir / "DEFAULT"
        return file.read_text(encoding="utf-8").strip() or None if file.is_file() else None

    def active_id(self) -> str:
        """The promoted model, else the shipped default; raises NoActiveModelError."""
        active = self._state().get("active") or self.shipped_default()
        if not active:
            raise NoActiveModelError("no active model: train one with `moderation train` and promote it")
        return str(active)

    def load(self, artifact_id: str | None = None) -> Model:
        """Load an artifact (the active one by default), verifying its files."""
        return Model.load(self.path(artifact_id or self.active_id()))

    # ---- writing -------------------------------------------------------------------------

    @contextmanager
    def stage(self, kind: str) -> Iterator[StagedArtifact]:
        """Build a new artifact atomically; the caller must set `staged.info` before exiting."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        artifact_id = new_artifact_id(kind)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{artifact_id}-", dir=self.artifacts_dir))
        staged = StagedArtifact(id=artifact_id, path=tmp)
        try:
            yield staged
            self.seal(staged)
            ArtifactInfo.read(tmp)  # never publish something we could not read back
            final = tmp.replace(self.artifacts_dir / artifact_id)
            staged.path = final
            staged.info.path = final  # type: ignore[union-attr]  # seal() set it
            logger.info("stored artifact %s", artifact_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @staticmethod
    def seal(staged: StagedArtifact) -> ArtifactInfo:
        """Record the model files' checksums and write meta.json into the staging folder."""
        if staged.info is None:
            raise ArtifactError("staged artifact has no metadata")
        staged.info.id = staged.id
        staged.info.files = {name: sha256_file(staged.path / name) for name in staged.info.files}
        staged.info.path = staged.path
        staged.info.write(staged.path)
        return staged.info

    def clean_staging(self) -> int:
        """Remove staging folders left by killed processes; returns how many were removed."""
        removed = 0
        if self.artifacts_dir.is_dir():
            for p in self.artifacts_dir.glob(f"{_STAGING_PREFIX}*"):
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
        return removed

    def _write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=self.root)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(self.root / STATE_FILE)

    def promote(
        self,
        artifact_id: str,
        *,
        actor: str | None = None,
        forced: bool = False,
        reason: str | None = None,
        regressions: Sequence[str] = (),
    ) -> str | None:
        """Make `artifact_id` active after loading it once; returns the previously active id.

        Each change is appended to the state's `promotions` log with who made it and, for a
        promotion the gate refused and an operator forced, the reason and what got worse.
        """
        Model.load(self.path(artifact_id))  # refuse a model that cannot serve
        state = self._state()
        try:
            previous: str | None = self.active_id()
        except NoActiveModelError:
            previous = None
        if previous == artifact_id:
            return previous
        history = [h for h in state["history"] if h != artifact_id]
        if previous:
            history.append(previous)
        now = datetime.now(UTC).isoformat()
        entry: dict[str, Any] = {"action": "promote", "id": artifact_id, "previous": previous, "at": now}
        entry.update(actor=actor, forced=forced, reason=reason, regressions=list(regressions))
        self._write_state(
            {
                "active": artifact_id,
                "history": history,
                "updated_at": now,
                "promotions": [*state["promotions"], entry],
            }
        )
        if forced:
            logger.warning("promoted %s over the gate (previous: %s): %s", artifact_id, previous, reason)
        else:
            logger.info("promoted %s (previous: %s)", artifact_id, previous)
        return previous

    def promotions(self) -> tuple[dict[str, Any], ...]:
        """The log of promotions and rollbacks, oldest first."""
        return tuple(self._state()["promotions"])

    def report(self, artifact_id: str) -> dict[str, Any] | None:
        """The evaluation report stored with an artifact (report.json), or None if it has none."""
        file = self.path(artifact_id) / "report.json"
        if not file.is_file():
            return None
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"artifact {artifact_id}: report.json is unreadable ({exc})") from None
        return report if isinstance(report, dict) else None

    def rollback(self) -> str:
        """Reactivate the previously active model; returns its id."""
        state = self._state()
        history = list(state["history"])
        current = state.get("active")
        while history:
            candidate = str(history.pop())
            if candidate == current:
                continue
            try:
                self.path(candidate)
            except ModelNotFoundError:
                logger.warning("rollback skips %s: no longer in the registry", candidate)
                continue
            now = datetime.now(UTC).isoformat()
            entry = {"action": "rollback", "id": candidate, "previous": current, "at": now}
            self._write_state(
                {
                    "active": candidate,
                    "history": history,
                    "updated_at": now,
                    "promotions": [*state["promotions"], entry],
                }
            )
            return candidate
        raise NoActiveModelError("nothing to roll back to: no previously active model")
