"""A uniform "model soup" (Wortsman et al., 2022): the weight average of fine-tuned networks.

Networks fine-tuned from the same pretrained encoder with different seeds often stay in one basin
of the loss; their weight average then scores about as well as their score average (a seed
ensemble) while it costs one network at serving time. Whether it does is measured, not assumed:
`training/EXPERIMENTS.md` has a soup that gained on validation and lost on test. The members
must share the architecture and the label schema; `load_fine_tuned` checks the latter.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.errors import InputDataError
from training.transformer import HISTORY_FILE, POOLING_KEY, FitResult, load_fine_tuned

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"


def soup(members: Sequence[Path], out_dir: Path) -> Path:
    """Average the weights of `members` (HF folders written by `fine_tune`) into `out_dir`."""
    import torch
    from safetensors.torch import load_file, save_file

    results = check_members(members)
    first_state = load_file(str(Path(members[0]) / WEIGHTS_FILE))
    total = {k: v.to(torch.float64) for k, v in first_state.items()}
    for member in members[1:]:
        state = load_file(str(Path(member) / WEIGHTS_FILE))
        if state.keys() != total.keys():
            raise InputDataError(f"{member}: its tensors differ from {members[0]}'s; cannot average")
        for key, value in state.items():
            if value.shape != total[key].shape:
                raise InputDataError(
                    f"{member}: {key} has shape {tuple(value.shape)}, not {tuple(total[key].shape)}"
                )
            total[key] += value.to(torch.float64)
    averaged = {k: (v / len(members)).to(first_state[k].dtype).contiguous() for k, v in total.items()}

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(averaged, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    first = Path(members[0])
    for item in first.iterdir():  # config, tokenizer: identical across members
        if item.is_file() and item.name not in (WEIGHTS_FILE, HISTORY_FILE):
            (out_dir / item.name).write_bytes(item.read_bytes())
    made_by = results[0].made_by or {}
    history = {  # load_fine_tuned reads this; the soup's own validation AUC is measured by its user
        "config": made_by.get("config"),
        "device": made_by.get("device"),
        "soup": [
            {
                "folder": str(m),
                "seed": ((r.made_by or {}).get("config") or {}).get("seed"),
                "best_step": r.best_step,
                "best_val_auc": None if math.isnan(r.best_val_auc) else r.best_val_auc,
            }
            for m, r in zip(members, results, strict=True)
        ],
        "history": [],
        "best_step": 0,
    }
    (out_dir / HISTORY_FILE).write_text(json.dumps(history, indent=1), encoding="utf-8")
    logger.info("soup of %d networks written to %s", len(members), out_dir)
    return out_dir


def check_members(members: Sequence[Path]) -> list[FitResult]:
    """Refuse folders that cannot be averaged, before anything is trained; returns each one's record."""
    if len(members) < 2:
        raise InputDataError("a soup needs at least two fine-tuned folders")
    results = [load_fine_tuned(Path(m)) for m in members]
    for member in members:
        if not (Path(member) / WEIGHTS_FILE).is_file():
            raise InputDataError(f"{member}: no {WEIGHTS_FILE}")
    configs = [_architecture(Path(m)) for m in members]
    for member, config in zip(members[1:], configs[1:], strict=True):
        if config != configs[0]:
            raise InputDataError(f"{member}: a different network from {members[0]}; cannot average")
    readers = [_normalizer(Path(m)) for m in members]
    for member, reader in zip(members[1:], readers[1:], strict=True):
        if reader != readers[0]:  # e.g. one trained with --split-hashtags, one without
            raise InputDataError(f"{member}: its tokenizer reads text differently from {members[0]}'s")
    return results


def _normalizer(folder: Path) -> Any:
    """The text normalizer in the folder's tokenizer.json (the soup copies the first member's)."""
    return json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("normalizer")


def _architecture(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    keys = (
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "id2label",
        POOLING_KEY,
    )
    return {k: config.get(k) for k in keys}
