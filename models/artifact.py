"""Artifact metadata: what every model folder carries and how it is validated."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.calibration import Calibrator
from models.errors import ArtifactError
from models.identity import IdentityCut
from models.labels import LABEL_NAMES

META_FILE = "meta.json"
# 2 added `identity_cut`. Code that only knows 1 would serve such an artifact without its identity
# cuts, so it must refuse it; this code reads both.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
KINDS = ("linear", "transformer", "ensemble")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ArtifactInfo:
    """The contents of an artifact's meta.json, validated against this code."""

    id: str
    kind: str
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    calibration: dict[str, Calibrator]
    files: dict[str, str]
    versions: dict[str, str]
    created_at: str
    data_hash: str = ""
    command: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    # Stricter cuts for comments that name an identity group (see models.identity); None: one cut per label.
    identity_cut: IdentityCut | None = None
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """Serialise to the meta.json structure."""
        data: dict[str, Any] = {
            # 1 where nothing needs 2, so that older code still serves such an artifact.
            "format_version": FORMAT_VERSION if self.identity_cut is not None else 1,
            "id": self.id,
            "kind": self.kind,
            "labels": list(self.labels),
            "thresholds": self.thresholds,
            "calibration": {k: v.to_json() for k, v in self.calibration.items()},
            "files": self.files,
            "versions": self.versions,
            "created_at": self.created_at,
            "data_hash": self.data_hash,
            "command": self.command,
            "metrics": self.metrics,
            "training": self.training,
        }
        if self.identity_cut is not None:
            data["identity_cut"] = self.identity_cut.to_json()
        return data

    def write(self, directory: Path) -> None:
        """Write meta.json into `directory`."""
        (directory / META_FILE).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, directory: Path) -> ArtifactInfo:
        """Read and validate `directory/meta.json`; raises ArtifactError with a one-line reason."""
        meta_path = directory / META_FILE
        try:
            data = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(f"artifact {directory.name}: {META_FILE} is missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"artifact {directory.name}: {META_FILE} is unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise ArtifactError(f"artifact {directory.name}: {META_FILE} is not an object")
        try:
            info = cls._from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"artifact {directory.name}: malformed {META_FILE} ({exc!r})") from None
        info.path = directory
        info.validate_schema()
        return info

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> ArtifactInfo:
        if data.get("format_version") not in READABLE_FORMATS:
            raise ArtifactError(f"unsupported artifact format_version {data.get('format_version')!r}")
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            labels=tuple(str(x) for x in data["labels"]),
            thresholds={str(k): float(v) for k, v in data["thresholds"].items()},
            calibration={str(k): Calibrator.from_json(v) for k, v in data.get("calibration", {}).items()},
            files={str(k): str(v) for k, v in data["files"].items()},
            versions={str(k): str(v) for k, v in data.get("versions", {}).items()},
            created_at=str(data["created_at"]),
            data_hash=str(data.get("data_hash", "")),
            command=str(data.get("command", "")),
            metrics=dict(data.get("metrics", {})),
            training=dict(data.get("training", {})),
            identity_cut=IdentityCut.from_json(data["identity_cut"]) if data.get("identity_cut") else None,
        )

    def validate_schema(self) -> None:
        """Refuse artifacts whose labels, kind or thresholds do not match this code's schema."""
        if self.kind not in KINDS:
            raise ArtifactError(f"artifact {self.id}: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.labels != LABEL_NAMES:
            raise ArtifactError(
                f"artifact {self.id}: its labels {list(self.labels)} do not match the schema {list(LABEL_NAMES)}"
            )
        missing = [name for name in self.labels if name not in self.thresholds]
        if missing:
            raise ArtifactError(f"artifact {self.id}: no threshold for {', '.join(missing)}")
        bad = [k for k, v in self.thresholds.items() if not 0.0 <= v <= 1.0]
        if bad:
            raise ArtifactError(f"artifact {self.id}: thresholds outside 0..1 for {', '.join(bad)}")
        if self.identity_cut is not None:
            unknown = [name for name in self.identity_cut.thresholds if name not in self.labels]
            if unknown:
                raise ArtifactError(
                    f"artifact {self.id}: identity cut for unknown label(s) {', '.join(unknown)}"
                )

    def verify_files(self) -> None:
        """Check every model file exists and matches its recorded SHA-256 (detects corruption)."""
        if self.path is None:
            raise ArtifactError(f"artifact {self.id}: no folder")
        for name, digest in self.files.items():
            file = self.path / name
            if not file.is_file():
                raise ArtifactError(f"artifact {self.id}: file {name} is missing")
            if sha256_file(file) != digest:
                raise ArtifactError(f"artifact {self.id}: file {name} is corrupted (checksum mismatch)")
