"""Dynamic batching: concurrent requests share forward passes, and keep their own results and errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import cast

import pytest

from models.scoring import Model, Prediction
from service.batching import Batcher


class FakeModel:
    """Scores a text by its length; 'boom' raises; each call takes a little time, like a forward pass."""

    def __init__(self, name: str = "m", delay: float = 0.02):
        self.name = name
        self.delay = delay
        self.calls: list[list[str]] = []

    def predict(self, texts: Sequence[str], *, spans: bool = True) -> list[Prediction]:
        self.calls.append(list(texts))
        time.sleep(self.delay)
        if "boom" in texts:
            raise ValueError("cannot score")
        return [Prediction({"len": float(len(t)), "spans": float(spans)}, [self.name], []) for t in texts]


def _as_model(fake: FakeModel) -> Model:
    return cast(Model, fake)


def _concurrently(n: int, target: object) -> list[object]:
    results: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            results[i] = target(i)  # type: ignore[operator]
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    fake = FakeModel()
    batcher = Batcher(max_texts=64)
    batcher.start()
    try:
        results = _concurrently(16, lambda i: batcher.predict(_as_model(fake), ["x" * i, "y" * (i + 1)]))
    finally:
        batcher.close()
    for i, predictions in enumerate(results):
        assert isinstance(predictions, list)
        assert [p.scores["len"] for p in predictions] == [float(i), float(i + 1)]
    assert batcher.requests == 16
    assert batcher.batches < 16  # while one pass runs, the others queue up and go together
    assert sum(len(c) for c in fake.calls) == 32


def test_a_failing_text_fails_only_its_own_request() -> None:
    fake = FakeModel(delay=0.05)
    batcher = Batcher()
    batcher.start()
    try:
        texts = [["fine"], ["boom"], ["also fine"], ["ok"]]
        results = _concurrently(4, lambda i: batcher.predict(_as_model(fake), texts[i]))
    finally:
        batcher.close()
    assert isinstance(results[1], ValueError)
    assert [r[0].scores["len"] for r in (results[0], results[2], results[3])] == [4.0, 9.0, 2.0]  # type: ignore[index]


def test_models_and_span_settings_are_scored_in_separate_groups() -> None:
    old, new = FakeModel("old", delay=0.05), FakeModel("new", delay=0.05)
    batcher = Batcher()
    batcher.start()
    try:
        jobs = [(old, True), (new, True), (old, False), (new, True)]
        results = _concurrently(
            4, lambda i: batcher.predict(_as_model(jobs[i][0]), [f"t{i}"], spans=jobs[i][1])
        )
    finally:
        batcher.close()
    for (model, spans), predictions in zip(jobs, results, strict=True):
        assert isinstance(predictions, list)
        assert predictions[0].flagged == [model.name] and predictions[0].scores["spans"] == float(spans)
    assert all(len({t for t in call}) == len(call) for call in old.calls + new.calls)


def test_without_a_thread_it_scores_in_the_callers_thread() -> None:
    fake = FakeModel(delay=0)
    batcher = Batcher()
    assert batcher.predict(_as_model(fake), ["abc"])[0].scores["len"] == 3.0
    batcher.start()
    batcher.close()
    assert batcher.predict(_as_model(fake), ["abcd"])[0].scores["len"] == 4.0
    with pytest.raises(ValueError):
        batcher.predict(_as_model(fake), ["boom"])
    with pytest.raises(ValueError):
        Batcher(max_texts=0)
