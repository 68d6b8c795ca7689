from __future__ import annotations

import pytest

from service.policy import Decision, Mode, Policy, Status, compile_terms

LOW = {"toxicity": 0.1, "insult": 0.05}
FLAGGED = {"toxicity": 0.8, "insult": 0.05}
SEVERE = {"toxicity": 0.99, "insult": 0.05}


def test_clean_comment_is_approved() -> None:
    outcome = Policy().evaluate("thanks", LOW, [])
    assert (outcome.decision, outcome.status, outcome.needs_review) == (
        Decision.approve,
        Status.approved,
        False,
    )
    assert outcome.flagged == [] and outcome.reasons == [] and outcome.priority == 0.0


def test_pre_moderation_holds_flagged_comments() -> None:
    outcome = Policy(mode=Mode.pre).evaluate("hm", FLAGGED, ["toxicity"])
    assert (outcome.decision, outcome.status, outcome.needs_review) == (Decision.review, Status.pending, True)
    assert outcome.flagged == ["toxicity"] and outcome.reasons == ["flagged:toxicity"]
    assert outcome.priority == 0.8


def test_post_moderation_publishes_flagged_comments_and_queues_them() -> None:
    outcome = Policy(mode=Mode.post).evaluate("hm", FLAGGED, ["toxicity"])
    assert (outcome.decision, outcome.status, outcome.needs_review) == (
        Decision.review,
        Status.approved,
        True,
    )


@pytest.mark.parametrize("mode", list(Mode))
def test_reject_threshold_rejects_in_both_modes(mode: Mode) -> None:
    outcome = Policy(mode=mode).evaluate("hm", SEVERE, ["toxicity"])
    assert (outcome.decision, outcome.status, outcome.needs_review) == (
        Decision.reject,
        Status.rejected,
        False,
    )
    assert outcome.reasons == ["score:toxicity>=0.97"]


def test_site_thresholds_override_the_model_flags() -> None:
    policy = Policy(review={"toxicity": 0.9, "insult": 0.01}, reject={"insult": 0.04})
    outcome = policy.evaluate("hm", FLAGGED, ["toxicity"])
    # toxicity 0.8 is below the site's 0.9; insult 0.05 is above its review and reject thresholds.
    assert outcome.flagged == ["insult"] and outcome.decision is Decision.reject
    assert policy.decide(FLAGGED, ["toxicity"]) is Decision.reject


@pytest.mark.parametrize("mode", list(Mode))
def test_unscored_comment_is_held_never_approved(mode: Mode) -> None:
    outcome = Policy(mode=mode).evaluate("anything", None, [], unscored_reason="model_unavailable: gone")
    assert (outcome.decision, outcome.status, outcome.needs_review) == (Decision.review, Status.pending, True)
    assert outcome.reasons == ["model_unavailable: gone"]


def test_banned_word_rejects_and_suspect_word_reviews() -> None:
    policy = Policy(mode=Mode.post, banned_words=("Scam",), suspect_words=("crypto",))
    banned = policy.evaluate("what a SCAM.", LOW, [])
    assert banned.decision is Decision.reject and banned.reasons == ["banned_word:scam"]
    suspect = policy.evaluate("buy Crypto now", LOW, [])
    assert (suspect.decision, suspect.status, suspect.needs_review) == (
        Decision.review,
        Status.approved,
        True,
    )
    assert suspect.reasons == ["suspect_word:crypto"]
    # A banned word rejects even when the model could not score.
    assert policy.evaluate("scam", None, []).decision is Decision.reject


@pytest.mark.parametrize(
    ("terms", "text", "found"),
    [
        (["scam"], "scammer and scams are different words", []),
        (["scam"], "it's a scam!", ["scam"]),
        (["straße"], "STRASSE gesperrt", ["strasse"]),  # Unicode casefolding
        (["ÉLAN"], "plein d'élan", ["élan"]),
        (["fake news"], "fake   News everywhere", ["fake news"]),
        (["idiot"], "идиот idiot_x xidiot", []),
        (["идиот"], "ты ИДИОТ", ["идиот"]),
    ],
)
def test_word_lists_match_whole_words_case_insensitively(
    terms: list[str], text: str, found: list[str]
) -> None:
    assert Policy(banned_words=tuple(terms)).word_matches(text)[0] == found


def test_compile_terms_ignores_blank_terms() -> None:
    assert compile_terms(["  ", ""]) is None
