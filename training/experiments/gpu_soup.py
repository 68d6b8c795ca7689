"""GPU job: a model soup of several seeds of the shipped recipe, with and without a refitted head.

Not part of the product; the next step of the 2026-11-27 soup entry in EXPERIMENTS.md, sized for a
lent GPU (about 50 s per 1.5-epoch fine-tuning on an H200). It brings its inputs as `gpu_job.py`
does (`var/gpu/`), or uses the installed encoder package where there is one (SMOKE runs here).
From the repository root: `OUT=DIR SEEDS=13,14,15,16,17 BUDGET_S=470 python3 training/experiments/gpu_soup.py`;
`POOLING=mean` fine-tunes as `--pooling mean`, and `IDENTITY_SWAP=1` adds the identity-swap copies
to each member's rows as `--identity-swap all` does (before the PAN windows, with the member's seed).

1. Each seed runs `moderation train --kind transformer --seed S`'s fine-tuning (the seed also
   draws the borrowed negatives and PAN windows, as there). A member is its last weights.
2. On the validation split (the same native rows for every seed): each member's ROC-AUC per
   label, their score mean (the ensemble a soup stands in for), the uniform soup
   (`training.soup`), and the soup with its classifier head refitted on frozen pooled features of
   the fine-tuning rows (the corpus repeats and caps as loss weights).
3. Back in $OUT (8 files at most): `results.json`, `log.txt`, `config.json`, the soup's weights in
   fp16 in 15 MB parts, and `head_refit.safetensors`. `python3 training/experiments/gpu_soup.py
   assemble DIR OUT_HF [--refit]` rebuilds a folder for `moderation train --fine-tuned OUT_HF`.
"""

from __future__ import annotations

import json
import os
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

SEEDS = [13, 14, 15, 16, 17]
REFIT_STEPS, REFIT_LR = 400, 1e-3  # as the CPU probe of the 2026-11-27 entry
POOLING = os.environ.get("POOLING", "cls")
IDENTITY_SWAP = os.environ.get("IDENTITY_SWAP") == "1"


def main(seeds: list[int]) -> None:
    import numpy as np
    import pandas as pd
    import torch
    from safetensors.torch import save_file

    carried_inputs()
    from transformers import AutoTokenizer

    import training.transformer as tt
    from training.corpora import DEFAULT_DATA_DIR, load_pan_roles
    from training.dataset import build_dataset
    from training.experiments.gpu_payload import send_weights
    from training.network import load_classifier
    from training.options import TrainConfig
    from training.soup import soup

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = TrainConfig()
    df = build_dataset()
    roles = load_pan_roles(DEFAULT_DATA_DIR)

    def frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        return fine_tuning_frames(df, roles, seed, IDENTITY_SWAP)  # type: ignore[no-any-return]

    results: dict[str, object] = {
        "torch": torch.__version__,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "pooling": POOLING,
        "identity_swap": IDENTITY_SWAP,
        "seeds": {},
    }
    train13, val = frames(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(tt.encoder_dir())
    enc_val = tt._Encoded(tokenizer, val["text"].tolist(), 128)

    def report(name: str, scores: np.ndarray) -> None:
        auc, per_label = tt.validation_score(scores, val)
        results[name] = {"macro": auc, **per_label}
        log.info("%s: validation macro AUC %.4f", name, auc)

    members: list[Path] = []
    member_scores: list[np.ndarray] = []
    per_seed = 0.0
    for seed in seeds:
        if members and elapsed() + per_seed * 1.2 + 60 > BUDGET:
            log.info("seed %d skipped: %.0f s left, a seed takes ~%.0f s", seed, BUDGET - elapsed(), per_seed)
            break
        t = time.monotonic()
        train, _ = frames(seed)
        config = tt.TransformerConfig(
            epochs=0.05 if SMOKE else 1.5, device=device, seed=seed, pooling=POOLING
        )
        res = tt.fine_tune(train, val, config, Path(f"/tmp/s{seed}/hf"), progress=False)
        folder = tt.last_dir(res.hf_dir) if tt.last_dir(res.hf_dir).is_dir() else res.hf_dir
        model = load_classifier(folder).to(device)
        scores = tt.predict_torch(model, enc_val, device)
        members.append(folder)
        member_scores.append(scores)
        per_seed = time.monotonic() - t
        results["seeds"][str(seed)] = {  # type: ignore[index]
            "folder": folder.name,
            "best_step": res.best_step,
            "history": res.history,
            "train_rows": len(train),
            "seconds": round(per_seed, 1),
        }
        report(f"seed{seed}", scores)
        dump("results.json", results)
    if len(members) < 2:
        log.info("fewer than two members: no soup")
        return
    report("score_mean", np.mean(member_scores, axis=0))
    souped = soup(members, Path("/tmp/soup"))
    model = load_classifier(souped).to(device).eval()
    report("soup", tt.predict_torch(model, enc_val, device))

    # The head refitted on frozen pooled features of the fine-tuning rows (seed 13's, as `--seed 13`):
    # the classifier's input, whichever pooling made it (dropout is off in eval mode).
    enc_train = tt._Encoded(tokenizer, train13["text"].tolist(), 128)
    pooled = torch.zeros((len(train13), model.config.hidden_size), device=device)
    order = np.argsort(enc_train.lengths, kind="stable")
    captured: list[torch.Tensor] = []
    hook = model.classifier.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    with torch.inference_mode():
        for i in range(0, len(order), 256):
            rows = order[i : i + 256]
            ids, mask = enc_train.batch(rows)
            captured.clear()
            model(input_ids=ids.to(device), attention_mask=mask.to(device))
            pooled[torch.from_numpy(rows).to(device)] = captured[0].float()
    hook.remove()
    defaults = tt.TransformerConfig()
    targets = tt.build_targets(train13, defaults.rare_positive_boost)
    weight = np.ones(len(train13), dtype=np.float32)  # each row's expected copies per epoch
    for name, repeats in defaults.corpus_repeats.items():
        weight[(train13["corpus"] == name).to_numpy()] = repeats
    for name, cap in defaults.corpus_caps.items():
        rows_of = (train13["corpus"] == name).to_numpy()
        if rows_of.sum() > cap:
            weight[rows_of] = cap / rows_of.sum()
    w = torch.from_numpy(targets.w * weight[:, None]).to(device)
    y = torch.from_numpy(targets.y).to(device)
    head = torch.nn.Linear(model.config.hidden_size, model.config.num_labels).to(device)
    with torch.no_grad():
        head.weight.copy_(model.classifier.weight)
        head.bias.copy_(model.classifier.bias)
    optimizer = torch.optim.Adam(head.parameters(), lr=REFIT_LR)
    for _ in range(REFIT_STEPS):
        optimizer.zero_grad()
        loss_all = torch.nn.functional.binary_cross_entropy_with_logits(head(pooled), y, reduction="none")
        loss = (loss_all * w).sum() / w.sum()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    with torch.no_grad():
        model.classifier.weight.copy_(head.weight)
        model.classifier.bias.copy_(head.bias)
    report("soup_refit", tt.predict_torch(model, enc_val, device))
    save_file(
        {"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()},
        OUT / "head_refit.safetensors",
    )

    (OUT / "config.json").write_bytes((souped / "config.json").read_bytes())
    results["soup_history"] = json.loads((souped / tt.HISTORY_FILE).read_text())
    dump("results.json", results)
    send_weights(souped / "model.safetensors", OUT, "soup")
    log.info("all done at %.0f s", elapsed())


def assemble(results_dir: Path, out: Path, refit: bool) -> None:
    """Rebuild a fine-tuned folder from what came back (fp32 weights, tokenizer from the package)."""
    from safetensors.torch import load_file, save_file

    import training.transformer as tt
    from training.experiments.gpu_payload import received_weights

    out.mkdir(parents=True, exist_ok=True)
    state = received_weights(results_dir, "soup")
    if refit:
        head = load_file(results_dir / "head_refit.safetensors")
        state["classifier.weight"], state["classifier.bias"] = head["weight"], head["bias"]
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_bytes((results_dir / "config.json").read_bytes())
    encoder = tt.encoder_dir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (encoder / name).is_file():
            (out / name).write_bytes((encoder / name).read_bytes())
    results = json.loads((results_dir / "results.json").read_text())
    (out / tt.HISTORY_FILE).write_text(json.dumps(results["soup_history"], indent=1))
    print(
        f"wrote {out}; validation macro AUC there: {results['soup_refit' if refit else 'soup']['macro']:.4f}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["assemble"]:
        assemble(Path(sys.argv[2]), Path(sys.argv[3]), refit="--refit" in sys.argv[4:])
    else:
        import os

        main([int(s) for s in os.environ.get("SEEDS", ",".join(map(str, SEEDS))).split(",")])
