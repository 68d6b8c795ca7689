"""Named domain errors of the scoring core and registry."""

from __future__ import annotations


class ModerationError(Exception):
    """Base class of the project's domain errors; the message is a one-line explanation."""


class UnknownLabelError(ModerationError, ValueError):
    """A label name that is not part of the schema."""


class ModelNotFoundError(ModerationError, LookupError):
    """No artifact with the requested id exists in the registry."""


class NoActiveModelError(ModerationError, LookupError):
    """The registry has no active model (none promoted and none shipped)."""


class ArtifactError(ModerationError):
    """An artifact is corrupted, incomplete or does not match this code (labels, kind, versions)."""


class InputDataError(ModerationError, ValueError):
    """Input data (a file to score or a corpus) is missing, empty, unreadable or malformed."""
