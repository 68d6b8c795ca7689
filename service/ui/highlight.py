"""Comment text cut into plain and highlighted segments, for the template to escape one by one.

The highlighting is built from text segments, never by inserting markup into the comment: the
template wraps a highlighted segment in <mark> and autoescapes its text like any other.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Segment:
    """A run of the text and the labels whose spans cover all of it (none: not highlighted)."""

    text: str
    labels: tuple[str, ...] = ()


def segments(text: str, spans: Iterable[Mapping[str, Any]]) -> list[Segment]:
    """Cut `text` at every span boundary; spans may overlap, run past the end or be empty."""
    ranges: list[tuple[int, int, str]] = []
    cuts = {0, len(text)}
    for span in spans:
        start, end = max(0, int(span["start"])), min(len(text), int(span["end"]))
        if start < end:
            ranges.append((start, end, str(span["label"])))
            cuts.update((start, end))
    points = sorted(cuts)
    out: list[Segment] = []
    for start, end in itertools.pairwise(points):
        labels = tuple(sorted({label for s, e, label in ranges if s <= start and end <= e}))
        if out and out[-1].labels == labels:
            out[-1] = Segment(out[-1].text + text[start:end], labels)
        else:
            out.append(Segment(text[start:end], labels))
    return out
