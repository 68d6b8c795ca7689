"""GPU job: distil the score mean of several seeds into one network (not part of the product).

The 2026-11-27 GPU entry of EXPERIMENTS.md found the score mean of six seeds of the shipped recipe
ahead of every member on validation (macro ROC-AUC 0.9178 against 0.911-0.915), and the uniform
soup of those seeds losing misinformation. A score mean costs one encoder pass per member; a single
student trained towards it costs one. This job measures whether the student keeps the gain.

It brings its inputs as `gpu_job.py` does (`var/gpu/`), or uses the installed encoder package where
there is one (SMOKE runs here). From the repository root:
`OUT=DIR TEACHERS=13,14,15 LAMBDA=0.5 MASKED_WEIGHT=0.25 BUDGET_S=470 python3 training/experiments/gpu_distill.py`

1. Teachers: the shipped recipe (`--pooling mean --identity-swap all`, 1.5 epochs) once per seed in
   `TEACHERS`, each on its own seed's rows, as `moderation train --seed S` draws them. Seed 13's
   teacher is also the baseline: the student differs from it only in its targets.
2. The teachers score the student's fine-tuning rows (seed 13's rows: borrowed negatives, identity
   swaps, PAN windows; training split only); their mean is the teacher signal.
3. Student A: the same fine-tuning (seed 13) with each known target replaced by
   `(1 - LAMBDA) * target + LAMBDA * teacher mean`; masked cells stay masked.
   Student B (when the budget allows): as A, and the masked cells (labels a corpus does not
   annotate) get the teacher mean as a target at loss weight `MASKED_WEIGHT`.
4. Validation ROC-AUC (the same native rows as every entry) of each teacher, the teachers' score
   mean and each student; the student with the better macro comes back in fp16, 15 MB parts, with
   its `config.json` and `history.json` (`gpu_soup.py assemble`-style: `python3
   training/experiments/gpu_distill.py assemble DIR OUT_HF` rebuilds a `--fine-tuned` folder).
No test row is read: teachers, students and the choice between students see train and validation.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

from training.experiments.gpu_job import (
    BUDGET,
    OUT,
    SMOKE,
    carried_inputs,
    dump,
    elapsed,
    fine_tuning_frames,
    log,
)

TEACHERS = [int(s) for s in os.environ.get("TEACHERS", "13,14,15").split(",")]
LAMBDA = float(os.environ.get("LAMBDA", "0.5"))
MASKED_WEIGHT = float(os.environ.get("MASKED_WEIGHT", "0.25"))
STUDENT_SEED = 13


def distilled(train, teacher, masked_weight: float):  # type: ignore[no-untyped-def]
    """`train` with known targets pulled towards `teacher`; masked cells too when `masked_weight`."""
    import numpy as np

    from models.labels import LABEL_NAMES
    from training.transformer import label_targets

    out = train.copy()
    for j, label in enumerate(LABEL_NAMES):
        target, known, weight = label_targets(out, label)
        hard = out[label].to_numpy(dtype=np.float64)
        t = teacher[:, j]
        new_soft = np.where(known, (1 - LAMBDA) * target + LAMBDA * t, np.nan)
        if masked_weight > 0:
            masked = ~known
            new_soft = np.where(masked, t, new_soft)
            out[label] = np.where(masked, (t >= 0.5).astype(np.float64), hard)
            out[f"weight_{label}"] = np.where(masked, masked_weight, weight)
        out[f"soft_{label}"] = new_soft
    return out


def main() -> None:
    import numpy as np
    import pandas as pd
    import torch
    from transformers import AutoTokenizer

    carried_inputs()
    import training.transformer as tt
    from training.corpora import DEFAULT_DATA_DIR, load_pan_roles
    from training.dataset import build_dataset
    from training.experiments.gpu_payload import send_weights
    from training.network import load_classifier

    device = "cuda" if torch.cuda.is_available() else "cpu"
    df = build_dataset()
    roles = load_pan_roles(DEFAULT_DATA_DIR)

    def frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:  # the shipped recipe's rows
        return fine_tuning_frames(df, roles, seed, True)  # type: ignore[no-any-return]

    results: dict[str, object] = {
        "torch": torch.__version__,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "lambda": LAMBDA,
        "masked_weight": MASKED_WEIGHT,
        "teachers": {},
        "students": {},
    }
    student_rows, val = frames(STUDENT_SEED)
    tokenizer = AutoTokenizer.from_pretrained(tt.encoder_dir())
    enc_val = tt._Encoded(tokenizer, val["text"].tolist(), 128)
    enc_rows = tt._Encoded(tokenizer, student_rows["text"].tolist(), 128)
    log.info(
        "data ready at %.0f s: %d student rows, %d validation rows", elapsed(), len(student_rows), len(val)
    )

    def report(name: str, scores: np.ndarray) -> float:
        auc, per_label = tt.validation_score(scores, val)
        results[name] = {"macro": auc, **per_label}
        log.info("%s: validation macro AUC %.4f", name, auc)
        return auc

    def config(seed: int) -> tt.TransformerConfig:
        return tt.TransformerConfig(epochs=0.05 if SMOKE else 1.5, device=device, seed=seed, pooling="mean")

    done: list[int] = []
    teacher_val: list[np.ndarray] = []
    teacher_rows: list[np.ndarray] = []
    per_run = 0.0
    for seed in TEACHERS:
        # leave room for this teacher and at least one student
        if teacher_val and elapsed() + per_run * 2.3 + 30 > BUDGET:
            log.info(
                "teacher %d skipped: %.0f s left, a run takes ~%.0f s", seed, BUDGET - elapsed(), per_run
            )
            break
        t = time.monotonic()
        train = student_rows if seed == STUDENT_SEED else frames(seed)[0]
        res = tt.fine_tune(train, val, config(seed), Path(f"/tmp/t{seed}/hf"), progress=False)
        model = load_classifier(res.hf_dir).to(device)
        teacher_val.append(tt.predict_torch(model, enc_val, device, batch_size=256))
        teacher_rows.append(tt.predict_torch(model, enc_rows, device, batch_size=256))
        del model
        per_run = time.monotonic() - t
        results["teachers"][str(seed)] = {  # type: ignore[index]
            "best_step": res.best_step,
            "best_val_auc": res.best_val_auc,
            "seconds": round(per_run, 1),
        }
        done.append(seed)
        report(f"teacher{seed}", teacher_val[-1])
        dump("results.json", results)
    report("teacher_mean", np.mean(teacher_val, axis=0))
    teacher = np.mean(teacher_rows, axis=0)

    best: tuple[float, str, Path] | None = None
    for name, masked_weight in (("A", 0.0), ("B", MASKED_WEIGHT)):
        if best is not None and elapsed() + per_run * 1.1 + 20 > BUDGET:
            log.info("student %s skipped: %.0f s left", name, BUDGET - elapsed())
            break
        t = time.monotonic()
        rows = distilled(student_rows, teacher, masked_weight)
        res = tt.fine_tune(rows, val, config(STUDENT_SEED), Path(f"/tmp/student{name}/hf"), progress=False)
        model = load_classifier(res.hf_dir).to(device)
        auc = report(f"student{name}", tt.predict_torch(model, enc_val, device, batch_size=256))
        del model
        results["students"][name] = {  # type: ignore[index]
            "masked_weight": masked_weight,
            "best_step": res.best_step,
            "best_val_auc": res.best_val_auc,
            "seconds": round(time.monotonic() - t, 1),
        }
        dump("results.json", results)
        if best is None or auc > best[0]:
            best = (auc, name, res.hf_dir)
    assert best is not None
    _, name, folder = best
    results["returned"] = name
    history = json.loads((folder / tt.HISTORY_FILE).read_text())
    history["distilled"] = {
        "teachers": done,
        "lambda": LAMBDA,
        "masked_weight": results["students"][name]["masked_weight"],  # type: ignore[index]
        "job": "training/experiments/gpu_distill.py",
    }
    (OUT / "history.json").write_text(json.dumps(history, indent=1, default=float))
    shutil.copy(folder / "config.json", OUT / "config.json")
    send_weights(folder / "model.safetensors", OUT, "student")
    dump("results.json", results)
    log.info("all done at %.0f s; student %s returned", elapsed(), name)


def assemble(results_dir: Path, out: Path) -> None:
    """Rebuild a fine-tuned folder from what came back (fp32 weights, tokenizer from the package)."""
    from safetensors.torch import save_file

    import training.transformer as tt
    from training.experiments.gpu_payload import received_weights

    out.mkdir(parents=True, exist_ok=True)
    state = received_weights(results_dir, "student")
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    shutil.copy(results_dir / "config.json", out / "config.json")
    shutil.copy(results_dir / "history.json", out / tt.HISTORY_FILE)
    for f in tt.encoder_dir().iterdir():
        if f.is_file() and (
            f.name.startswith("tokenizer") or f.name in ("vocab.txt", "special_tokens_map.json")
        ):
            shutil.copy(f, out / f.name)


if __name__ == "__main__":
    if sys.argv[1:2] == ["assemble"]:
        assemble(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
