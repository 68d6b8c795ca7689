"""The one label schema of the product.

Every other module, the artifacts, the API documentation and the training data read the
labels from here (or from an artifact that was validated against this list).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.errors import UnknownLabelError


@dataclass(frozen=True)
class Label:
    """A moderation label with its one-line definition."""

    name: str
    definition: str


LABELS: tuple[Label, ...] = (
    Label(
        "toxicity", "Rude, disrespectful or unreasonable content likely to make people leave a discussion."
    ),
    Label("insult", "Insulting, inflammatory or negative language aimed at a person or a group of people."),
    Label("threat", "Describes an intention to inflict pain, injury or violence against a person or group."),
    Label(
        "identity_attack",
        "Negative or hateful language targeting someone because of an identity (race, religion, gender, "
        "sexual orientation, disability, nationality).",
    ),
    Label("profanity", "Swear words, curse words or other obscene language."),
    Label("spam", "Unsolicited promotion, self-advertising, links or requests unrelated to the discussion."),
    Label(
        "misinformation",
        "States false or misleading factual claims (e.g. about health or current events) as true.",
    ),
    Label(
        "conspiracy",
        "Explains events as the secret plot of a powerful hidden group (e.g. 'great replacement', "
        "'they created ISIS').",
    ),
)

LABEL_NAMES: tuple[str, ...] = tuple(label.name for label in LABELS)
DEFINITIONS: dict[str, str] = {label.name: label.definition for label in LABELS}


def validate_labels(names: Iterable[str]) -> list[str]:
    """Return `names` as a list, raising UnknownLabelError if any is not in the schema."""
    names = list(names)
    unknown = [n for n in names if n not in DEFINITIONS]
    if unknown:
        raise UnknownLabelError(
            f"unknown label(s): {', '.join(unknown)}; known labels: {', '.join(LABEL_NAMES)}"
        )
    return names
