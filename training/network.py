"""The fine-tuned classifier network: BERT with a multi-label head over a pooled comment vector.

Two poolings of the encoder's last layer feed the head:

- ``cls``: Hugging Face's ``BertForSequenceClassification`` as it is (the [CLS] token through the
  pretrained ``pooler``, a dense layer with tanh);
- ``mean``: the mean of the token vectors under the attention mask, as sentence-transformers pools
  all-MiniLM-L6-v2. The encoder was trained for sentence similarity on exactly that vector, while
  its ``pooler`` took no part in that training.

The pooling is saved in the folder's ``config.json`` (``classifier_pooling``), so `load_classifier`
rebuilds either network from a ``save_pretrained`` folder; folders written before the option
existed have no such key and load as ``cls``. Both export to ONNX with the same inputs and
outputs (`training.export`), so serving does not know which one it runs.

This module imports transformers and torch at import time: import it inside functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    BertModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from training.transformer import POOLING_KEY, POOLINGS


class MeanPoolBertForSequenceClassification(BertForSequenceClassification):  # type: ignore[no-untyped-call]
    """BERT whose classification head reads the masked mean of the last layer's token vectors."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)  # the [CLS] pooler is never used
        setattr(config, POOLING_KEY, "mean")
        self.post_init()  # type: ignore[no-untyped-call]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        if input_ids is None:
            raise ValueError("input_ids are required")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden = out.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        logits = self.classifier(self.dropout(pooled))
        return SequenceClassifierOutput(logits=logits, hidden_states=out.hidden_states)


_CLASSES: dict[str, Any] = {
    "cls": AutoModelForSequenceClassification,
    "mean": MeanPoolBertForSequenceClassification,
}


def new_classifier(base: Path, pooling: str, labels: tuple[str, ...]) -> Any:
    """The pretrained encoder at `base` with an untrained multi-label head over `labels`."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    options: dict[str, Any] = {
        "num_labels": len(labels),
        "problem_type": "multi_label_classification",
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
    }
    return _CLASSES[pooling].from_pretrained(base, **options)


def pooling_of(folder: Path) -> str:
    """The pooling a saved classifier folder was fine-tuned with (``cls`` when not recorded)."""
    config = AutoConfig.from_pretrained(folder)
    pooling = getattr(config, POOLING_KEY, "cls")
    if pooling not in POOLINGS:
        raise ValueError(f"{folder}: unknown {POOLING_KEY} {pooling!r} in config.json")
    return str(pooling)


def load_classifier(folder: Path, **options: Any) -> Any:
    """A fine-tuned classifier from a ``save_pretrained`` folder, with the pooling it was trained with."""
    return _CLASSES[pooling_of(folder)].from_pretrained(folder, **options)
