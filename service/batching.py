"""Dynamic batching of scoring requests: one scoring thread, concurrent requests share a forward pass.

A transformer scores 8 comments in one batch far faster than in 8 separate calls, and 8 separate
calls on a small machine also oversubscribe its cores (each ONNX Runtime call uses all of them).
Requests go into a queue; one worker thread takes the first and whatever else is already waiting
(greedy batching: no timer, so an idle service adds no latency, and a busy one batches more),
scores them together and hands each request its own predictions. Requests for different models
(during a hot swap) or with spans on and off are scored in separate groups.

If a batch fails, each request in it is scored alone, so one bad text cannot fail its neighbours.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from models.scoring import Model, Prediction

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    model: Model
    texts: list[str]
    spans: bool
    future: Future[list[Prediction]] = field(default_factory=Future)


class Batcher:
    """Thread-safe: `predict` may be called from any thread (and `submit` from the event loop)."""

    def __init__(self, max_texts: int = 64):
        if max_texts < 1:
            raise ValueError("max_texts must be positive")
        self.max_texts = max_texts
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # forward passes run, for tests and metrics
        self.requests = 0

    def start(self) -> None:
        """Start the scoring thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="scoring-batcher", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued requests and stop the thread; later calls score directly."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def submit(self, model: Model, texts: Sequence[str], *, spans: bool = True) -> Future[list[Prediction]]:
        """Queue `texts` for scoring; the future resolves to one Prediction per text."""
        job = _Job(model, list(texts), spans)
        if self._thread is None:
            _resolve(job)  # not started (or closed): score in the caller's thread
        else:
            self._queue.put(job)
        return job.future

    def predict(self, model: Model, texts: Sequence[str], *, spans: bool = True) -> list[Prediction]:
        """Score `texts`, blocking until done (call from a worker thread, not the event loop)."""
        return self.submit(model, texts, spans=spans).result()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            jobs, n = [first], len(first.texts)
            while n < self.max_texts:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
                n += len(job.texts)
            self._score(jobs)

    def _score(self, jobs: list[_Job]) -> None:
        groups: dict[tuple[int, bool], list[_Job]] = {}
        for job in jobs:
            groups.setdefault((id(job.model), job.spans), []).append(job)
        for group in groups.values():
            model, spans = group[0].model, group[0].spans
            texts = [text for job in group for text in job.texts]
            self.batches += 1
            self.requests += len(group)
            try:
                predictions = model.predict(texts, spans=spans)
            except Exception:
                if len(group) == 1:
                    _resolve(group[0])
                    continue
                logger.warning("a batch of %d requests failed; scoring them one by one", len(group))
                for job in group:
                    _resolve(job)
                continue
            start = 0
            for job in group:
                job.future.set_result(predictions[start : start + len(job.texts)])
                start += len(job.texts)


def _resolve(job: _Job) -> None:
    try:
        job.future.set_result(job.model.predict(job.texts, spans=job.spans))
    except Exception as exc:
        job.future.set_exception(exc)
