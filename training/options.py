"""Typed training options and their command-line form."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from training.linear import NB_WEIGHTING, LinearConfig
from training.transformer import POOLINGS, TransformerConfig

KINDS = ("linear", "transformer", "ensemble")
# Which models the identity swap's copies train: none, every model of the run, or the linear half only.
SWAP_SCOPES = ("none", "all", "linear")


def default_feedback_path(env: Mapping[str, str]) -> Path:
    """Where `moderation feedback export` writes and `--include-feedback` reads by default."""
    return Path(env.get("MODERATION_DATA_DIR") or "var") / "feedback" / "feedback.jsonl"


@dataclass
class TrainConfig:
    """What `moderation train` does, independent of how it was asked for."""

    kind: str = field(default="linear", metadata={"help": "model kind"})
    data_dir: Path | None = field(default=None, metadata={"help": "corpora folder (default training/data)"})
    corpora: tuple[str, ...] | None = field(default=None, metadata={"help": "train on these corpora only"})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "cap on training rows (seeded sample), for quick runs and tests"}
    )
    negative_weight: float = field(
        default=0.3, metadata={"help": "weight of borrowed cross-corpus negatives"}
    )
    max_negatives_per_corpus: int = field(default=4000, metadata={"help": "borrowed negatives per corpus"})
    calibration: str = field(default="isotonic", metadata={"help": "platt or isotonic, fitted on validation"})
    identity_fpr_cap: float | None = field(
        default=None,
        metadata={"help": "max flag rate of neutral identity-mentioning validation comments (toxicity cut)"},
    )
    identity_swap: str = field(
        default="none",
        metadata={
            "help": "add counterfactual copies of identity-naming training rows (training.augment):"
            " none, all (every model the run fits) or linear (an ensemble's linear half only)"
        },
    )
    seed: int = field(default=13, metadata={"help": "random seed"})
    compare: bool = field(default=True, metadata={"help": "compare with the active model"})
    feedback: Path | None = field(
        default=None, metadata={"help": "feedback corpus (`moderation feedback export`) to train on too"}
    )
    feedback_weight: float = field(default=1.0, metadata={"help": "weight of a feedback row in training"})
    linear: LinearConfig = field(default_factory=LinearConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if self.max_train_samples is not None and self.max_train_samples < 10:
            raise ValueError("max_train_samples must be at least 10")
        if not 0.0 <= self.negative_weight <= 1.0:
            raise ValueError("negative_weight must be within 0..1")
        if self.identity_fpr_cap is not None and not 0.0 < self.identity_fpr_cap < 1.0:
            raise ValueError("identity_fpr_cap must be within (0, 1)")
        if self.calibration not in ("platt", "isotonic"):
            raise ValueError("calibration must be platt or isotonic")
        if self.identity_swap not in SWAP_SCOPES:
            raise ValueError(f"identity_swap must be one of {', '.join(SWAP_SCOPES)}")
        if self.identity_swap == "linear" and self.kind == "transformer":
            raise ValueError("--identity-swap linear needs --kind linear or ensemble")
        if self.feedback_weight <= 0:
            raise ValueError("feedback_weight must be positive")
        if self.transformer.fine_tuned:
            if self.kind == "linear":
                raise ValueError("--fine-tuned needs --kind transformer or ensemble")
            for folder in self.transformer.fine_tuned:
                if not folder.is_dir():
                    raise ValueError(f"--fine-tuned {folder}: no such folder")
            if len(set(self.transformer.fine_tuned)) < len(self.transformer.fine_tuned):
                raise ValueError("--fine-tuned: a folder is named twice")
            if len(self.transformer.fine_tuned) > 1:
                from training.soup import check_members

                check_members(self.transformer.fine_tuned)  # now, not after the linear half has trained


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `train` subcommand's options."""
    defaults = TrainConfig()
    parser.add_argument("--kind", choices=KINDS, default=defaults.kind)
    parser.add_argument("--data-dir", type=Path, help="corpora folder (default training/data)")
    parser.add_argument("--corpora", help="comma-separated corpora to use (default: all)")
    parser.add_argument("--max-train-samples", type=int, help="cap training rows, for quick runs")
    parser.add_argument("--negative-weight", type=float, default=defaults.negative_weight)
    parser.add_argument("--max-negatives-per-corpus", type=int, default=defaults.max_negatives_per_corpus)
    parser.add_argument("--calibration", choices=("platt", "isotonic"), default=defaults.calibration)
    parser.add_argument(
        "--identity-fpr-cap",
        type=float,
        help="give comments that name an identity group a stricter toxicity cut, flagging at most this"
        " share of the neutral validation comments that name one (e.g. 0.05); other comments keep the"
        " F1-optimal cut; default: the F1-optimal cut for every comment",
    )
    parser.add_argument(
        "--identity-swap",
        nargs="?",
        choices=SWAP_SCOPES,
        const="all",
        default=defaults.identity_swap,
        metavar="SCOPE",
        help="add a copy of each training comment that names an identity group with another group"
        " named instead (counterfactual augmentation against identity-term bias); SCOPE: all (the"
        " default when the flag is given: every model the run fits) or linear (an ensemble's"
        " TF-IDF half only; its network trains on the plain rows)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-compare", action="store_true", help="do not compare with the active model")
    parser.add_argument(
        "--include-feedback",
        dest="feedback",
        type=Path,
        nargs="?",
        const=default_feedback_path(os.environ),
        metavar="FILE",
        help="also train on moderator feedback exported by `moderation feedback export` "
        "(default FILE: $MODERATION_DATA_DIR/feedback/feedback.jsonl); its held-out slice is reported",
    )
    parser.add_argument(
        "--feedback-weight",
        type=float,
        default=defaults.feedback_weight,
        help="weight of a feedback row relative to a corpus row",
    )
    lin = defaults.linear
    tf = defaults.transformer
    parser.add_argument("--epochs", type=float, default=tf.epochs, help="transformer: passes over the data")
    parser.add_argument(
        "--batch-size", type=int, default=tf.batch_size, help="transformer: comments per step"
    )
    parser.add_argument(
        "--max-length", type=int, default=tf.max_length, help="transformer: tokens per comment"
    )
    parser.add_argument("--learning-rate", type=float, default=tf.learning_rate, help="transformer: peak LR")
    parser.add_argument(
        "--pooling",
        choices=POOLINGS,
        default=tf.pooling,
        help="transformer: the comment vector under the classification head: cls (the [CLS] token"
        " through BERT's pooler) or mean (masked mean of the token vectors, as the encoder was"
        " pretrained for sentence similarity)",
    )
    parser.add_argument(
        "--split-hashtags",
        action="store_true",
        help="transformer: read camel-case hashtags as words (#WalkAwayFromDemocrats as #walk away from"
        " democrats); the rule is saved in the served tokenizer",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=tf.device, help="transformer device"
    )
    parser.add_argument(
        "--threads", type=int, default=tf.threads, help="transformer: torch CPU threads (0: all cores)"
    )
    parser.add_argument(
        "--corpus-repeats",
        metavar="CORPUS=N,...",
        default="",
        help="transformer: times each listed corpus's rows appear per epoch, replacing the default for"
        " that corpus (defaults: "
        + ", ".join(f"{k}={v}" for k, v in tf.corpus_repeats.items())
        + "); N >= 1",
    )
    parser.add_argument(
        "--repeat-native-only",
        action="store_true",
        help="transformer: copies of a repeated corpus's rows (--corpus-repeats) beyond the first train"
        " only that corpus's own labels, not the negatives it lends to other labels",
    )
    parser.add_argument(
        "--no-pan-windows",
        dest="pan_windows",
        action="store_false",
        help="transformer: do not add comment-length windows of long PAN posts",
    )
    parser.add_argument(
        "--checkpoint-dir", type=Path, help="transformer: resumable checkpoints (rerun the command to resume)"
    )
    parser.add_argument(
        "--fine-tuned",
        type=Path,
        nargs="+",
        default=[],
        metavar="DIR",
        help="transformer/ensemble: skip fine-tuning and use this folder written by an earlier run's"
        " fine-tuning (CHECKPOINT_DIR/hf, e.g. made on a GPU machine); export, calibration and"
        " evaluation run here. Several folders (e.g. runs with other --seed values) are averaged"
        " weight by weight into one network, a model soup",
    )
    parser.add_argument(
        "--C-grid",
        dest="c_grid",
        default=",".join(f"{c:g}" for c in lin.C_grid),
        help="linear: comma-separated inverse L2 strengths; each label picks one on validation",
    )
    parser.add_argument(
        "--linear-nb",
        choices=NB_WEIGHTING,
        default=lin.nb_weighting,
        help="linear: Naive Bayes log-count-ratio feature weights (NB-LR): off, on, or auto (per label,"
        " whichever scores better on validation)",
    )
    parser.add_argument("--word-features", type=int, default=lin.word_max_features)
    parser.add_argument("--char-features", type=int, default=lin.char_max_features)


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError("expected at least one number")
    return values


def _repeats(text: str, defaults: dict[str, int]) -> dict[str, int]:
    """`CORPUS=N,...` over the default repeats; unknown corpora and N < 1 are errors."""
    from training.corpora import CORPORA

    repeats = dict(defaults)
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in CORPORA:
            raise ValueError(
                f"--corpus-repeats: expected CORPUS=N with CORPUS one of {', '.join(CORPORA)}; got {part!r}"
            )
        try:
            n = int(value)
        except ValueError:
            raise ValueError(
                f"--corpus-repeats: {name}: N must be a whole number, got {value.strip()!r}"
            ) from None
        if n < 1:
            raise ValueError(f"--corpus-repeats: {name}: N must be >= 1, got {n}")
        repeats[name] = n
    return repeats


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build a validated TrainConfig from parsed arguments."""
    corpora = tuple(c.strip() for c in args.corpora.split(",") if c.strip()) if args.corpora else None
    return TrainConfig(
        kind=args.kind,
        data_dir=args.data_dir,
        corpora=corpora,
        max_train_samples=args.max_train_samples,
        negative_weight=args.negative_weight,
        max_negatives_per_corpus=args.max_negatives_per_corpus,
        calibration=args.calibration,
        identity_fpr_cap=args.identity_fpr_cap,
        identity_swap=args.identity_swap,
        seed=args.seed,
        compare=not args.no_compare,
        feedback=args.feedback,
        feedback_weight=args.feedback_weight,
        linear=LinearConfig(
            word_max_features=args.word_features,
            char_max_features=args.char_features,
            C_grid=_floats(args.c_grid),
            nb_weighting=args.linear_nb,
        ),
        transformer=TransformerConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            max_length=args.max_length,
            learning_rate=args.learning_rate,
            pooling=args.pooling,
            split_hashtags=args.split_hashtags,
            device=args.device,
            checkpoint_dir=args.checkpoint_dir,
            fine_tuned=tuple(args.fine_tuned),
            pan_windows=args.pan_windows,
            corpus_repeats=_repeats(args.corpus_repeats, TransformerConfig().corpus_repeats),
            repeat_native_only=args.repeat_native_only,
            threads=args.threads,
            seed=args.seed,
        ),
    )
