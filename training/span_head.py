"""A token-level span head on the fine-tuned encoder, trained on the corpora's span annotations.

Occlusion explains a score by rescoring the comment once per word: ~25x the cost of scoring it.
The span head reads the encoder's last hidden states, which the classifier computes anyway, and
gives every token a probability per label of lying inside an annotated span, so the served graph
returns scores and spans from one forward pass.

Supervision: civil_comments' majority toxic spans (toxicity, and the typed insult / threat /
identity_attack / profanity spans) and PAN 2024's narrative-role spans of conspiracy posts (CRITICAL
posts have none: all their tokens are negatives). The encoder stays frozen (it was fine-tuned for
the comment labels); the head is one linear layer (hidden -> K) fitted with a masked, class-weighted
binary cross-entropy. Each label's token threshold is chosen on the validation split by the
SemEval 2021 character F1 of the served spans (`models.spans.token_spans`, the serving code).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.spans import token_spans
from training.metrics import span_chars, span_f1

logger = logging.getLogger(__name__)

HEAD_FILE = "span_head.npz"
# Which corpus annotates the spans of which label.
SPAN_SUPERVISION: dict[str, str] = {
    "toxicity": "civil_comments",
    "insult": "civil_comments",
    "threat": "civil_comments",
    "identity_attack": "civil_comments",
    "profanity": "civil_comments",
    "conspiracy": "pan2024",
}
THRESHOLD_GRID = tuple(round(x, 2) for x in np.arange(0.05, 0.96, 0.05))


@dataclass
class SpanHead:
    """Weights (hidden, K), bias (K,), the K labels and their token thresholds."""

    labels: tuple[str, ...]
    weight: NDArray[np.float32]
    bias: NDArray[np.float32]
    thresholds: tuple[float, ...]
    report: dict[str, Any]

    def save(self, hf_dir: Path) -> None:
        """Write span_head.npz beside the fine-tuned model (export_onnx picks it up)."""
        np.savez(
            hf_dir / HEAD_FILE,
            weight=self.weight,
            bias=self.bias,
            labels=np.array(self.labels),
            thresholds=np.array(self.thresholds, dtype=np.float64),
            report=np.array(json.dumps(self.report)),
        )

    @classmethod
    def load(cls, hf_dir: Path) -> SpanHead | None:
        """The head saved in `hf_dir`, or None when it has none."""
        path = hf_dir / HEAD_FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return cls(
                labels=tuple(str(x) for x in data["labels"]),
                weight=np.asarray(data["weight"], dtype=np.float32),
                bias=np.asarray(data["bias"], dtype=np.float32),
                thresholds=tuple(float(x) for x in data["thresholds"]),
                report=json.loads(str(data["report"])),
            )


@dataclass
class _Tokens:
    """Last hidden states and character offsets of every real token of some texts."""

    hidden: list[NDArray[np.float32]]  # per text (T_i, H)
    offsets: list[NDArray[np.int64]]  # per text (T_i, 2); special tokens (0, 0)


def _encode(model: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 32) -> _Tokens:
    import torch

    hidden: list[NDArray[np.float32]] = [np.zeros((0, 0), dtype=np.float32)] * len(texts)
    offsets: list[NDArray[np.int64]] = [np.zeros((0, 2), dtype=np.int64)] * len(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in rows],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_offsets_mapping=True,
                return_special_tokens_mask=True,
                return_tensors="pt",
            )
            out = model(
                **{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")},
                output_hidden_states=True,
            )
            last = out.hidden_states[-1].float().numpy()
            for r, i in enumerate(rows):
                n = int(enc["attention_mask"][r].sum())
                off = enc["offset_mapping"][r, :n].numpy().astype(np.int64)
                off[enc["special_tokens_mask"][r, :n].numpy().astype(bool)] = 0
                hidden[i] = last[r, :n]
                offsets[i] = off
    return _Tokens(hidden=hidden, offsets=offsets)


def _token_targets(offsets: NDArray[np.int64], spans: list[Any], label: str) -> NDArray[np.float32]:
    y = np.zeros(len(offsets), dtype=np.float32)
    for span in spans:
        if span["label"] != label:
            continue
        s, e = int(span["start"]), int(span["end"])
        y[(offsets[:, 0] < e) & (offsets[:, 1] > s) & (offsets[:, 1] > offsets[:, 0])] = 1.0
    return y


def _annotated(df: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    corpora = {SPAN_SUPERVISION[name] for name in labels}
    return df[df["corpus"].isin(corpora)].reset_index(drop=True)


def _stack(
    tokens: _Tokens, df: pd.DataFrame, labels: tuple[str, ...]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Token features (N, H), targets (N, K) and mask (N, K) over every real token."""
    xs, ys, ms = [], [], []
    for i, (spans, corpus) in enumerate(zip(df["spans"], df["corpus"], strict=True)):
        real = tokens.offsets[i][:, 1] > tokens.offsets[i][:, 0]
        off = tokens.offsets[i][real]
        xs.append(tokens.hidden[i][real])
        ys.append(np.stack([_token_targets(off, list(spans), name) for name in labels], axis=1))
        known = np.array([SPAN_SUPERVISION[name] == corpus for name in labels], dtype=np.float32)
        ms.append(np.broadcast_to(known, (len(off), len(labels))))
    return np.vstack(xs), np.vstack(ys), np.vstack(ms).astype(np.float32)


def _fit_linear(
    x: NDArray[np.float32], y: NDArray[np.float32], mask: NDArray[np.float32], *, epochs: int, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    xt, yt, mt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask)
    mean, std = xt.mean(0), xt.std(0).clamp_min(1e-4)
    layer = torch.nn.Linear(x.shape[1], y.shape[1])
    pos = (yt * mt).sum(0)
    neg = ((1 - yt) * mt).sum(0)
    pos_weight = (neg / pos.clamp_min(1.0)).clamp(1.0, 20.0)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=3e-3, weight_decay=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(perm), 4096):
            idx = perm[start : start + 4096]
            logits = layer((xt[idx] - mean) / std)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, yt[idx], pos_weight=pos_weight, reduction="none"
            )
            loss = (loss * mt[idx]).sum() / mt[idx].sum().clamp_min(1.0)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    # Fold the standardisation into the weights: logits = x @ W + b on raw hidden states.
    with torch.no_grad():
        w = (layer.weight / std).T.contiguous()
        b = layer.bias - (mean / std) @ layer.weight.T
    return w.numpy().astype(np.float32), b.numpy().astype(np.float32)


def _choose_thresholds(
    tokens: _Tokens,
    df: pd.DataFrame,
    head: tuple[NDArray[np.float32], NDArray[np.float32]],
    labels: tuple[str, ...],
) -> tuple[tuple[float, ...], dict[str, Any]]:
    """Per label, the token threshold with the best mean char-F1 on its annotated validation rows."""
    weight, bias = head
    chosen: list[float] = []
    report: dict[str, Any] = {}
    probs = [1.0 / (1.0 + np.exp(-(h @ weight + bias))) for h in tokens.hidden]
    for k, name in enumerate(labels):
        rows = [i for i, c in enumerate(df["corpus"]) if c == SPAN_SUPERVISION[name]]
        if not rows:
            chosen.append(0.5)
            continue
        texts = df["text"].tolist()
        gold = [span_chars(list(df["spans"].iloc[i]), (name,)) for i in rows]
        best = (-1.0, 0.5)
        for t in THRESHOLD_GRID:
            f1 = float(
                np.mean(
                    [
                        span_f1(
                            span_chars(
                                token_spans(texts[i], tokens.offsets[i], probs[i][:, k], t, name), (name,)
                            ),
                            g,
                        )
                        for i, g in zip(rows, gold, strict=True)
                    ]
                )
            )
            if f1 > best[0]:
                best = (f1, t)
        chosen.append(best[1])
        report[name] = {
            "threshold": best[1],
            "validation_char_f1_all_rows": round(best[0], 4),
            "rows": len(rows),
        }
        logger.info("span head %s: token threshold %.2f, validation char-F1 %.3f", name, best[1], best[0])
    return tuple(chosen), report


def fit_span_head(
    hf_dir: Path,
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    max_length: int = 128,
    epochs: int = 4,
    max_train_rows: int | None = None,
    seed: int = 13,
) -> SpanHead | None:
    """Fit the span head on the encoder in `hf_dir` and save it there; None without span data."""
    from training.network import load_classifier
    from training.transformer import load_tokenizer

    labels = tuple(
        name
        for name in SPAN_SUPERVISION
        if (train["corpus"] == SPAN_SUPERVISION[name]).any()
        and (val["corpus"] == SPAN_SUPERVISION[name]).any()
    )
    if not labels:
        logger.info("span head: no span-annotated corpus in the data; none fitted")
        return None
    train = _annotated(train.drop_duplicates("id"), labels)
    if max_train_rows is not None and len(train) > max_train_rows:
        train = train.sample(n=max_train_rows, random_state=seed).reset_index(drop=True)
    val = _annotated(val.drop_duplicates("id"), labels)
    model = load_classifier(hf_dir)
    tokenizer = load_tokenizer(hf_dir)
    logger.info("span head: encoding %d training and %d validation texts", len(train), len(val))
    x, y, mask = _stack(_encode(model, tokenizer, train["text"].tolist(), max_length), train, labels)
    weight, bias = _fit_linear(x, y, mask, epochs=epochs, seed=seed)
    val_tokens = _encode(model, tokenizer, val["text"].tolist(), max_length)
    thresholds, report = _choose_thresholds(val_tokens, val, (weight, bias), labels)
    head = SpanHead(labels=labels, weight=weight, bias=bias, thresholds=thresholds, report=report)
    head.save(hf_dir)
    return head
