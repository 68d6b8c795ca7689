"""Per-label score calibration stored as plain numbers inside an artifact.

Calibrators are fitted on the validation split by training code and applied by every
scorer at inference, so that the scores the service returns are the scores that were
evaluated. They serialise to JSON (no pickles), which keeps artifacts inspectable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from models.errors import ArtifactError

FloatArray = NDArray[np.float64]
_EPS = 1e-6


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


@dataclass(frozen=True)
class Calibrator:
    """Maps a raw probability to a calibrated one: identity, Platt scaling or isotonic."""

    method: Literal["identity", "platt", "isotonic"] = "identity"
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, raw: FloatArray) -> FloatArray:
        """Calibrate an array of raw probabilities."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "identity":
            return raw
        if self.method == "platt":
            z = self.a * _logit(raw) + self.b
            return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)
        return np.asarray(np.interp(raw, self.x, self.y), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict."""
        return {"method": self.method, "a": self.a, "b": self.b, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibrator:
        """Read a calibrator written by `to_json`, validating it."""
        method = data.get("method")
        if method not in ("identity", "platt", "isotonic"):
            raise ArtifactError(f"unknown calibration method {method!r}")
        x = tuple(float(v) for v in data.get("x", ()))
        y = tuple(float(v) for v in data.get("y", ()))
        if method == "isotonic" and (len(x) < 2 or len(x) != len(y)):
            raise ArtifactError("isotonic calibrator needs matching x and y knots")
        return cls(method=method, a=float(data.get("a", 1.0)), b=float(data.get("b", 0.0)), x=x, y=y)


def fit_calibrator(
    raw: FloatArray,
    y: FloatArray,
    sample_weight: FloatArray | None = None,
    method: Literal["platt", "isotonic"] = "platt",
) -> Calibrator:
    """Fit a calibrator on held-out (validation) scores; identity when y has one class."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if raw.shape != y.shape or raw.ndim != 1:
        raise ValueError("raw scores and labels must be 1-d arrays of the same length")
    if len(np.unique(y)) < 2:
        return Calibrator()
    if method == "platt":
        lr = LogisticRegression(C=1e4, max_iter=1000)
        lr.fit(_logit(raw).reshape(-1, 1), y, sample_weight=sample_weight)
        return Calibrator(method="platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(raw, y, sample_weight=sample_weight)
    xs, ys = _centred_knots(raw, iso.predict(raw), sample_weight)
    # The end segments are flat; a tiny ramp keeps ties there ordered by the raw score.
    ys = np.clip(ys + np.linspace(0, 1e-4, len(ys)), 0.0, 1.0)
    return Calibrator(method="isotonic", x=tuple(xs.tolist()), y=tuple(ys.tolist()))


def _centred_knots(
    raw: FloatArray, fitted: FloatArray, sample_weight: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """Knots of centred isotonic regression (Oron & Flournoy, 2017): one per block of equal fitted
    value, at the block's weighted mean raw score, plus the two ends of the raw range.

    Plain isotonic regression is a staircase: its knots sit at both ends of each block, so between
    two neighbouring raw scores the calibrated value can jump by the whole step (0.8 was measured
    on a rare label), and noise of 0.001 in the raw score (another CPU, a quantized network)
    flips a decision. Interpolating between block centres keeps the fit monotone and within its
    blocks' values but turns each step into a slope across the blocks' width.
    """
    order = np.argsort(raw, kind="stable")
    r, f = raw[order], fitted[order]
    w = np.ones_like(r) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[order]
    w = np.where(w > 0, w, 1e-12)
    starts = np.flatnonzero(np.r_[True, np.diff(f) != 0])
    sums = np.add.reduceat(w * r, starts)
    centres = sums / np.add.reduceat(w, starts)
    values = f[starts]
    xs = np.r_[r[0], centres, r[-1]]
    ys = np.r_[values[0], values, values[-1]]
    keep = np.r_[True, np.diff(xs) > 0]  # np.interp needs increasing x; drop repeated knots
    return xs[keep], ys[keep]
