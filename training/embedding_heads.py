"""Frozen sentence embeddings and a SetFit-style contrastive stage, against full fine-tuning.

`python -m training.embedding_heads --model ID --out DIR` answers issue 3's question for the scarce
labels: does a head on the *pretrained* all-MiniLM-L6-v2 sentence embedding (the encoder was trained
for sentence similarity), or on that encoder after a short contrastive stage on label pairs (SetFit,
Tunstall et al. 2022), generalise better than the fully fine-tuned network?

Every variant fits one masked logistic head per label on the same training rows and borrowed negatives
as the linear baseline (`training.linear.label_rows`: soft targets, rare-positive boost), with C
picked on the label's native validation rows. The fine-tuned network and the TF-IDF half are the
artifact's own (`--model`, scored through the served backend), so every row of the comparison uses
the same rows and the same code path as `moderation train`. Blend weights (two-way as shipped, and
three-way with the embedding head) are chosen on validation only; test figures are reported, never
chosen on.

Sentence embeddings are the encoder's mean-pooled, L2-normalised last hidden states (how
sentence-transformers pools this model). The contrastive stage follows SetFit: pairs of training
comments that share a scarce label's positive (target similarity 1) or pair a positive with a
negative of that label (target 0), cosine-similarity loss, a few hundred steps. Needs torch
(`make install`); embeddings are cached in DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.labels import LABEL_NAMES
from models.spans import logit
from training.dataset import add_cross_corpus_negatives, build_dataset, native_mask
from training.linear import label_rows
from training.options import TrainConfig

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
SCARCE_LABELS = ("threat", "profanity", "identity_attack", "spam", "conspiracy")
C_GRID = (0.25, 1.0, 4.0, 16.0)
MAX_LENGTH = 128


def _auc(y: NDArray[Any], p: NDArray[Any]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


# --------------------------------------------------------------------------- embeddings


def _mean_pool(hidden: Any, mask: Any) -> Any:
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def embed(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 128) -> NDArray[np.float32]:
    """Mean-pooled, normalised sentence embeddings, batched by length."""
    import torch

    enc = tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)
    ids: list[list[int]] = enc["input_ids"]
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    pad = tokenizer.pad_token_id or 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            batch = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for k, r in enumerate(rows):
                batch[k, : lengths[r]] = torch.tensor(ids[r])
                mask[k, : lengths[r]] = 1
            hidden = model(input_ids=batch, attention_mask=mask).last_hidden_state
            out[rows] = _mean_pool(hidden, mask).numpy()
    return out


def _cache_file(texts: Sequence[str], path: Path) -> Path:
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    return path.with_name(f"{path.name}-{digest}.npy")


def cached_embed(model: Any, tokenizer: Any, texts: Sequence[str], path: Path) -> NDArray[np.float32]:
    """`embed`, stored under `path` with a hash of the texts so that a changed split is re-encoded."""
    file = _cache_file(texts, path)
    if file.exists():
        return np.asarray(np.load(file), dtype=np.float32)
    started = time.monotonic()
    vectors = embed(model, tokenizer, texts)
    np.save(file, vectors)
    logger.info("embedded %d texts in %.0f s -> %s", len(texts), time.monotonic() - started, file)
    return vectors


def cached_scores(score: Callable[[list[str]], FloatArray], texts: list[str], path: Path) -> FloatArray:
    """`score(texts)`, stored under `path` like `cached_embed`."""
    file = _cache_file(texts, path)
    if file.exists():
        return np.asarray(np.load(file), dtype=np.float64)
    scores = np.asarray(score(texts), dtype=np.float64)
    np.save(file, scores)
    return scores


# --------------------------------------------------------------------------- contrastive stage


def contrastive_pairs(
    train: pd.DataFrame, labels: Sequence[str], pairs_per_label: int, seed: int
) -> list[tuple[int, int, float]]:
    """SetFit pairs per label: half positive-positive (target 1), half positive-negative (target 0)."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int, float]] = []
    for label in labels:
        native = native_mask(train, label)
        y = train[label].to_numpy(dtype=np.float64)
        pos = np.flatnonzero(native & (y >= 0.5))
        neg = np.flatnonzero(native & (y < 0.5))
        if len(pos) < 2 or len(neg) < 1:
            continue
        half = pairs_per_label // 2
        a = rng.choice(pos, size=half)
        b = rng.choice(pos, size=half)
        pairs += [(int(i), int(j), 1.0) for i, j in zip(a, b, strict=True) if i != j]
        a = rng.choice(pos, size=half)
        b = rng.choice(neg, size=half)
        pairs += [(int(i), int(j), 0.0) for i, j in zip(a, b, strict=True)]
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order]


def _pooled(model: Any, tokenizer: Any, texts: list[str]) -> Any:
    """Sentence embeddings of one padded batch, with gradients (training)."""
    batch = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
    return _mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])


def contrastive_tune(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[tuple[int, int, float]],
    *,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    seed: int = 13,
) -> dict[str, float]:
    """One pass over `pairs` with SetFit's cosine-similarity loss (MSE of cos(a, b) to the target)."""
    import torch

    torch.manual_seed(seed)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    losses: list[float] = []
    started = time.monotonic()
    steps = (len(pairs) + batch_size - 1) // batch_size
    for step in range(steps):
        chunk = pairs[step * batch_size : (step + 1) * batch_size]
        target = torch.tensor([t for _, _, t in chunk], dtype=torch.float32)
        ea = _pooled(model, tokenizer, [texts[i] for i, _, _ in chunk])
        eb = _pooled(model, tokenizer, [texts[j] for _, j, _ in chunk])
        loss = torch.nn.functional.mse_loss((ea * eb).sum(-1), target)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0 or step + 1 == steps:
            logger.info(
                "contrastive step %d/%d, loss %.4f (last 50), %.0f s",
                step + 1,
                steps,
                float(np.mean(losses[-50:])),
                time.monotonic() - started,
            )
    model.eval()
    window = max(1, min(50, steps // 4))  # mean loss of the first and last quarter, at most 50 steps
    return {
        "steps": steps,
        "pairs": len(pairs),
        "first_loss": float(np.mean(losses[:window])),
        "last_loss": float(np.mean(losses[-window:])),
        "seconds": round(time.monotonic() - started, 1),
    }


# --------------------------------------------------------------------------- heads and blends


def fit_heads(
    train: pd.DataFrame,
    x_train: NDArray[np.float32],
    val: pd.DataFrame,
    x_val: NDArray[np.float32],
    boost: float,
    labels: Sequence[str] = LABEL_NAMES,
) -> tuple[dict[str, Any], dict[str, float]]:
    """One logistic head per label on embeddings; C by validation ROC-AUC on native rows."""
    from sklearn.linear_model import LogisticRegression

    heads: dict[str, Any] = {}
    chosen: dict[str, float] = {}
    for label in labels:
        rows, targets, weights = label_rows(train, label, boost)
        native = native_mask(val, label)
        y_val = val.loc[native, label].to_numpy(dtype=np.float64) >= 0.5
        best: tuple[float, float, Any] | None = None
        for c in C_GRID:
            head = LogisticRegression(C=c, max_iter=2000)
            head.fit(x_train[rows], targets, sample_weight=weights)
            auc = _auc(y_val, head.decision_function(x_val[native])) or -1.0
            if best is None or auc > best[0]:
                best = (auc, c, head)
        assert best is not None
        chosen[label], heads[label] = best[1], best[2]
    return heads, chosen


def head_scores(heads: dict[str, Any], x: NDArray[np.float32]) -> FloatArray:
    """(n, L) probabilities; labels without a head score 0.5."""
    out = np.full((len(x), len(LABEL_NAMES)), 0.5)
    for j, label in enumerate(LABEL_NAMES):
        if label in heads:
            out[:, j] = heads[label].predict_proba(x)[:, 1]
    return out


def three_way_weights(
    parts: Sequence[FloatArray], val: pd.DataFrame, label: str, step: float = 0.1
) -> tuple[tuple[float, ...], float]:
    """Simplex weights of the parts' logits with the best validation ROC-AUC for `label`."""
    j = LABEL_NAMES.index(label)
    native = native_mask(val, label)
    y = val.loc[native, label].to_numpy(dtype=np.float64) >= 0.5
    logits = [logit(p[native, j]) for p in parts]
    grid = np.round(np.arange(0.0, 1.0 + 1e-9, step), 2)
    best: tuple[float, tuple[float, ...]] = (-1.0, ())
    for ws in product(grid, repeat=len(parts) - 1):
        if sum(ws) > 1.0 + 1e-9:
            continue
        w = (*ws, round(1.0 - sum(ws), 2))
        auc = _auc(y, sum(wi * z for wi, z in zip(w, logits, strict=True))) or -1.0
        if auc > best[0] + 1e-9:
            best = (auc, w)
    return best[1], best[0]


def blended(parts: Sequence[FloatArray], weights: Sequence[float], j: int) -> FloatArray:
    return np.asarray(sum(w * logit(p[:, j]) for w, p in zip(weights, parts, strict=True)))


def per_corpus_auc(df: pd.DataFrame, scores: FloatArray, label: str) -> dict[str, float | None]:
    """ROC-AUC of one label on its native rows, pooled and per corpus."""
    j = LABEL_NAMES.index(label)
    native = native_mask(df, label)
    y = df[label].to_numpy(dtype=np.float64) >= 0.5
    out: dict[str, float | None] = {"all": _auc(y[native], scores[native, j])}
    corpus = df["corpus"].to_numpy()
    for name in sorted(set(corpus[native])):
        rows = native & (corpus == name)
        out[str(name)] = _auc(y[rows], scores[rows, j])
    return out


# --------------------------------------------------------------------------- driver


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from models.registry import Registry, default_registry_dir
    from training.transformer import encoder_dir

    torch.set_num_threads(args.threads)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig()
    df = build_dataset(args.data_dir) if args.data_dir else build_dataset()
    augmented = add_cross_corpus_negatives(
        df, weight=config.negative_weight, max_per_corpus=config.max_negatives_per_corpus, seed=config.seed
    )
    train = augmented[augmented["split"] == "train"].reset_index(drop=True)
    val = augmented[augmented["split"] == "validation"].reset_index(drop=True)
    test = augmented[augmented["split"] == "test"].reset_index(drop=True)  # native rows: weight 1
    boost = config.linear.rare_positive_boost
    logger.info("rows: train %d, validation %d, test %d", len(train), len(val), len(test))

    registry = Registry(args.registry or default_registry_dir(os.environ))
    model = registry.load(args.model)
    backend = model.backend
    halves: dict[str, dict[str, FloatArray]] = {"transformer": {}, "linear": {}}
    for name, frame in (("validation", val), ("test", test)):
        texts = frame["text"].tolist()
        for half in halves:
            halves[half][name] = cached_scores(
                getattr(backend, half).predict_raw,
                texts,
                out_dir / f"{model.id}-{half}-{name}",
            )
    shipped_weights = list(backend.weights)  # type: ignore[attr-defined]

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir())
    variants: dict[str, dict[str, FloatArray]] = {}
    info: dict[str, Any] = {}
    encoder = AutoModel.from_pretrained(encoder_dir())
    for stage in ("frozen", "setfit"):
        frames = (("train", train), ("validation", val), ("test", test))
        cached = all(
            _cache_file(frame["text"].tolist(), out_dir / f"{stage}-{n}").exists() for n, frame in frames
        )
        if stage == "setfit" and not cached:
            pairs = contrastive_pairs(train, SCARCE_LABELS, args.pairs_per_label, config.seed)
            info["setfit"] = contrastive_tune(encoder, tokenizer, train["text"].tolist(), pairs)
        x = {
            name: cached_embed(encoder, tokenizer, frame["text"].tolist(), out_dir / f"{stage}-{name}")
            for name, frame in frames
        }
        heads, chosen = fit_heads(train, x["train"], val, x["validation"], boost)
        info[f"{stage}_C"] = chosen
        variants[stage] = {name: head_scores(heads, x[name]) for name in ("validation", "test")}

    results: dict[str, Any] = {"model": model.id, "info": info, "labels": {}}
    for j, label in enumerate(LABEL_NAMES):
        row: dict[str, Any] = {}
        for name, parts in (
            ("transformer", halves["transformer"]),
            ("linear", halves["linear"]),
            ("frozen head", variants["frozen"]),
            ("setfit head", variants["setfit"]),
        ):
            row[name] = {
                "validation": per_corpus_auc(val, parts["validation"], label)["all"],
                "test": per_corpus_auc(test, parts["test"], label),
            }
        two = [halves["transformer"], halves["linear"]]
        w2 = (shipped_weights[j], 1.0 - shipped_weights[j])
        row["shipped blend"] = {
            "weights": w2,
            "validation": per_corpus_auc(
                val, _as_matrix(blended([p["validation"] for p in two], w2, j), j), label
            )["all"],
            "test": per_corpus_auc(test, _as_matrix(blended([p["test"] for p in two], w2, j), j), label),
        }
        for stage in ("frozen", "setfit"):
            parts3 = [halves["transformer"], halves["linear"], variants[stage]]
            w3, val_auc = three_way_weights([p["validation"] for p in parts3], val, label)
            row[f"3-way with {stage}"] = {
                "weights": w3,
                "validation": val_auc,
                "test": per_corpus_auc(
                    test, _as_matrix(blended([p["test"] for p in parts3], w3, j), j), label
                ),
            }
        results["labels"][label] = row
    return results


def _as_matrix(z: FloatArray, j: int) -> FloatArray:
    """One label's blended logits placed in column j of an (n, L) array (ROC-AUC is rank-based)."""
    out = np.zeros((len(z), len(LABEL_NAMES)))
    out[:, j] = z
    return out


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Compared against `{results['model']}` (ROC-AUC; validation pooled over native rows, test pooled"
        " and per corpus).",
        "",
        "| label | variant | weights | validation | test (all) | test per corpus |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in results["labels"].items():
        for name, cell in row.items():
            weights = ", ".join(f"{w:.1f}" for w in cell.get("weights", ())) or "–"
            per = "; ".join(f"{k} {v:.3f}" for k, v in cell["test"].items() if k != "all" and v is not None)
            val = "–" if cell["validation"] is None else f"{cell['validation']:.4f}"
            test_all = "–" if cell["test"]["all"] is None else f"{cell['test']['all']:.4f}"
            lines.append(f"| {label} | {name} | {weights} | {val} | {test_all} | {per} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.embedding_heads", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", default=None, help="artifact whose network and TF-IDF half to compare (default: active)"
    )
    parser.add_argument(
        "--registry", type=Path, default=None, help="registry folder (default: from settings)"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="corpora folder (default training/data)")
    parser.add_argument("--out", type=Path, required=True, help="folder for embeddings and results")
    parser.add_argument("--pairs-per-label", type=int, default=800, help="contrastive pairs per scarce label")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = run(args)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    table = markdown(results)
    (args.out / "results.md").write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
