"""`python -m training.tradeoff [MODEL_ID]`: the toxicity cut's trade-off, for the record.

Cuts are chosen on validation only (F1, and F1 under identity flag-rate caps of 5/10/20%); the
table shows what each gives on test (OLID macro-F1, civil_comments toxicity F1) and on a sample of
bias_madlibs NOT_BAD rows. It reports, it does not choose: picking a cut from this table would be
tuning on the test splits.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np

from models.registry import Registry, default_registry_dir
from training import metrics
from training.dataset import add_cross_corpus_negatives, build_dataset, load_bias_madlibs
from training.options import TrainConfig
from training.train import calibrate_and_threshold

CAPS = (0.05, 0.10, 0.20)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.tradeoff", description=__doc__)
    parser.add_argument("model", nargs="?", help="artifact id (default: the active model)")
    parser.add_argument("--bias-sample", type=int, default=8000, help="NOT_BAD rows scored")
    args = parser.parse_args(argv)

    registry = Registry(default_registry_dir(os.environ))
    model = registry.load(args.model or registry.active_id())
    j = model.labels.index("toxicity")
    df = build_dataset()
    defaults = TrainConfig()  # the validation rows `moderation train` calibrates on
    val = add_cross_corpus_negatives(
        df,
        weight=defaults.negative_weight,
        max_per_corpus=defaults.max_negatives_per_corpus,
        seed=defaults.seed,
    )
    val = val[val["split"] == "validation"].reset_index(drop=True)
    raw = model.raw_scores(val["text"].tolist())
    cuts = {"served": model.info.thresholds["toxicity"]}
    cuts["F1 only"] = calibrate_and_threshold(raw, val, "isotonic")[1]["toxicity"]
    for cap in CAPS:
        cuts[f"cap {cap:.0%}"] = calibrate_and_threshold(raw, val, "isotonic", identity_fpr_cap=cap)[1][
            "toxicity"
        ]

    test = df[df["split"] == "test"]
    olid = test[test["corpus"] == "olid"]
    civil = test[test["corpus"] == "civil_comments"]
    s_olid = model.score(olid["text"].tolist())[:, j]
    s_civil = model.score(civil["text"].tolist())[:, j]
    bias = load_bias_madlibs()
    not_bad = bias[bias["label"] == 0]
    not_bad = not_bad.sample(n=min(args.bias_sample, len(not_bad)), random_state=0)
    s_bias = model.score(not_bad["text"].tolist())[:, j]

    print(f"model {model.id}; cuts chosen on validation (isotonic calibration refitted for the others)")
    print(f"{'cut':<10} {'value':>6} {'OLID macro-F1':>14} {'civil tox F1':>13} {'NOT_BAD flagged':>16}")
    for name, cut in cuts.items():
        f_olid = metrics.macro_f1(olid["toxicity"].to_numpy(), (s_olid >= cut).astype(np.float64))
        f_civil = metrics.binary_metrics(civil["toxicity"].to_numpy(), s_civil, cut)["f1"]
        print(
            f"{name:<10} {cut:>6.3f} {f_olid:>14.3f} {f_civil:>13.3f} {float((s_bias >= cut).mean()):>16.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
