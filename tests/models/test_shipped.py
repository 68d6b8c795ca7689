"""The committed default model loads without training and behaves on a handful of canonical comments.

A smoke test, not the target: the model is tuned and judged on the test splits (report.json).
"""

from __future__ import annotations

import pytest

from models.registry import Registry
from models.scoring import Model

SEED = (
    "All you have put together are lies. ISIS is an American project, they train them and give them "
    "weapons and disseminate them into the countries. This is a plan and you are just telling lies."
)
ON_TOPIC = (
    "Great reporting, thanks for covering Kunar province.",
    "Which figure is right, the UN one or the Pentagon one?",
)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Model:
    registry = Registry(tmp_path_factory.mktemp("registry"))
    default = registry.shipped_default()
    assert default is not None, "models/shipped/DEFAULT names no model"
    return registry.load(default)


@pytest.mark.slow
def test_the_default_is_the_shipped_artifact_with_its_card(shipped: Model) -> None:
    assert shipped.info.path is not None
    for name in ("MODEL_CARD.md", "report.json", "meta.json"):
        assert (shipped.info.path / name).is_file(), name
    assert shipped.info.metrics["macro_roc_auc"] > 0.9


@pytest.mark.slow
def test_the_seed_comment_is_flagged_conspiracy(shipped: Model) -> None:
    (prediction,) = shipped.predict([SEED])
    assert "conspiracy" in prediction.flagged


@pytest.mark.slow
@pytest.mark.parametrize("text", ON_TOPIC)
def test_ordinary_on_topic_comments_are_not_flagged(shipped: Model, text: str) -> None:
    (prediction,) = shipped.predict([text])
    assert prediction.flagged == [] and prediction.spans == []


@pytest.mark.slow
def test_an_insult_is_flagged_with_its_words_highlighted(shipped: Model) -> None:
    text = "Nobody asked you, you pathetic idiot. Shut up."
    (prediction,) = shipped.predict([text])
    assert {"toxicity", "insult"} <= set(prediction.flagged)
    highlighted = " ".join(
        text[s.start : s.end] for s in prediction.spans if s.label in ("toxicity", "insult")
    )
    # The span head marks the insulting words, not the neutral ones.
    assert highlighted and set(highlighted.lower().replace(".", "").split()) <= {
        "pathetic",
        "idiot",
        "shut",
        "up",
    }


@pytest.mark.slow
def test_channel_spam_is_flagged_spam(shipped: Model) -> None:
    text = "Check out my channel!!! Subscribe and share, I post new music videos every day http://bit.ly/xyz"
    (prediction,) = shipped.predict([text])
    assert "spam" in prediction.flagged
