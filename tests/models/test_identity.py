"""Identity cuts: comments that name an identity group are held to a stricter cut, as stored in the artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.errors import ArtifactError
from models.identity import IDENTITY_TERMS, IdentityCut, find_identity, identity_pattern, mentions_identity
from models.labels import LABEL_NAMES
from models.registry import Registry
from tests.conftest import store_tiny_model

TOX = LABEL_NAMES.index("toxicity")
STRICT = IdentityCut(IDENTITY_TERMS, {"toxicity": 0.999})


def test_mentions_are_whole_words_and_ignore_case() -> None:
    texts = ["As a GAY man I agree", "gaya is a place", "African American voters", "nothing here", ""]
    assert mentions_identity(texts).tolist() == [True, False, True, False, False]
    assert (
        find_identity("my African American neighbour", identity_pattern(IDENTITY_TERMS)) == "african american"
    )
    assert mentions_identity(["a deaf reader"], ("blind",)).tolist() == [False]
    with pytest.raises(ValueError, match="empty"):
        identity_pattern(())


def test_identity_cut_applies_only_to_comments_naming_a_group(registry: Registry) -> None:
    model = registry.load(store_tiny_model(registry, identity_cut=STRICT))
    texts = ["you stupid idiot", "you stupid gay idiot", "thanks for the article"]
    cuts = model.cuts(texts)
    assert cuts[:, TOX].tolist() == [0.5, 0.999, 0.5]
    assert (np.delete(cuts, TOX, axis=1) == 0.5).all()  # the other labels keep their cut
    scores = model.score(texts)
    assert scores[0, TOX] > 0.5 and scores[1, TOX] > 0.5  # both score as toxic ...
    flags = model.flags(scores, texts)
    assert flags[0, TOX] and not flags[1, TOX]  # ... but only one is over its cut
    assert flags[1, LABEL_NAMES.index("insult")]  # the other labels still flag it
    preds = model.predict(texts)
    assert "toxicity" in preds[0].flagged and "toxicity" not in preds[1].flagged
    assert "insult" in preds[1].flagged and preds[2].flagged == []
    with pytest.raises(ValueError, match="texts"):
        model.flags(scores, texts[:2])


def test_model_without_identity_cut_uses_one_cut_per_label(registry: Registry) -> None:
    model = registry.load(store_tiny_model(registry))
    assert model.info.identity_cut is None
    assert (model.cuts(["you stupid gay idiot", "thanks"]) == 0.5).all()
    assert model.cuts([]).shape == (0, len(LABEL_NAMES))


def test_identity_cut_round_trips_and_needs_format_2(registry: Registry) -> None:
    with_cut = store_tiny_model(registry, identity_cut=STRICT)
    plain = store_tiny_model(registry)
    data = json.loads((registry.path(with_cut) / "meta.json").read_text())
    assert data["format_version"] == 2
    assert data["identity_cut"] == {"terms": list(IDENTITY_TERMS), "thresholds": {"toxicity": 0.999}}
    assert registry.get(with_cut).identity_cut == STRICT
    # Without one, the artifact stays at format 1, which older code still serves.
    plain_data = json.loads((registry.path(plain) / "meta.json").read_text())
    assert plain_data["format_version"] == 1 and "identity_cut" not in plain_data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 3}, "format_version 3"),
        ({"identity_cut": {"terms": ["gay"], "thresholds": {"toxicity": 1.5}}}, "outside 0..1"),
        ({"identity_cut": {"terms": [], "thresholds": {"toxicity": 0.9}}}, "non-empty"),
        ({"identity_cut": {"terms": ["gay"]}}, "malformed"),
        ({"identity_cut": {"terms": ["gay"], "thresholds": {"sarcasm": 0.9}}}, "unknown label"),
    ],
)
def test_bad_identity_cut_is_refused(registry: Registry, change: dict[str, object], message: str) -> None:
    artifact_id = store_tiny_model(registry, identity_cut=STRICT)
    meta = registry.path(artifact_id) / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), **change}))
    with pytest.raises(ArtifactError, match=message):
        registry.get(artifact_id)
