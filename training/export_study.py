"""`python -m training.export_study HF_DIR OUT VARIANT ...`: size and parity of int8 exports.

Exports one fine-tuned network (a `save_pretrained` folder, e.g. `<checkpoint-dir>/hf` of a
`moderation train` run) several ways and reports, for each, the file size and the largest and mean
|difference| of its scores from PyTorch's on the validation split: the figures behind
`training.export.DEFAULT_METHOD`, `GPTQ_BLOCK` and the parity fallback. Its calibration comments
are drawn as `moderation train` draws them, from the rows of its default configuration (a run with
`--identity-swap` draws from more rows, so its sample differs); `--calibration-texts` changes how
many. It changes nothing.

A VARIANT is an export method (`training.export.QUANTIZERS`), or one of these layouts, with L
rows per int8 scale in the linear layers and T columns per scale in the word-piece table:
`gptq-L-T` (sequential GPTQ, as int8-gptq), `gptqa-L-T` (the same with act-order: rows rounded
loudest input channel first, static block scales; written as int8-gptq), `gptqa16PART-L-T`
(the same with one part of every encoder layer in fp16, PART one of
`training.export.LAYER_PARTS`: up, down, ffn, attn, qk; `gptqa16up-8-32` is int8-mixed),
`gptq1-L-T` (GPTQ with every X^T X from the fp32 graph), `nearest-L-T` (rounded to nearest, as
int8-folded), `table-T` (int8 table, fp16 layers, as int8-compact).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training import export
from training.export import Quantizer

Feeds = Sequence[dict[str, NDArray[np.int64]]]
LAYOUT = re.compile(r"^(gptq|gptqa|gptqa16[a-z]+|gptq1|nearest)-(\d+)-(\d+)$|^table-(\d+)$")


def _one_shot_gptq(source: Path, target: Path, calibration: Feeds, block: int, table_block: int) -> None:
    """int8-gptq's layout with every X^T X taken from the fp32 graph in one pass (not sequential)."""
    import onnx

    model = onnx.load(str(source))
    hessians = export._activation_hessians(model, calibration)
    export._quantize_embeddings(model, int8_block=table_block)
    export._store_weights_int8(model, block, hessians)
    onnx.save(model, str(target))


def variant(name: str) -> tuple[str, Quantizer]:
    """(the quantization name written to transformer.json, the quantizer) of a VARIANT."""
    if name in export.QUANTIZERS:
        return name, export.QUANTIZERS[name]
    match = LAYOUT.match(name)
    if match is None:
        raise ValueError(
            f"unknown variant {name!r}: an export method, gptq-L-T, gptqa-L-T, gptqa16PART-L-T,"
            " gptq1-L-T, nearest-L-T or table-T"
        )
    kind, layers, table, table_only = match.groups()
    if kind is None:
        return "int8-compact", export._no_calibration(
            partial(export._store_fp16, table_block=int(table_only))
        )
    block, table_block = int(layers), int(table)
    if kind == "gptq":
        return "int8-gptq", partial(export._store_int8_gptq, block=block, table_block=table_block)
    if kind.startswith("gptqa16"):
        part = kind.removeprefix("gptqa16")
        if part not in export.LAYER_PARTS:
            raise ValueError(f"unknown variant {name!r}: PART is one of {', '.join(export.LAYER_PARTS)}")
        return "int8-gptq", partial(
            export._store_int8_gptq,
            block=block,
            table_block=table_block,
            act_order=True,
            fp16_layers=export.LAYER_PARTS[part],
        )
    if kind == "gptqa":
        return "int8-gptq", partial(
            export._store_int8_gptq, block=block, table_block=table_block, act_order=True
        )
    if kind == "nearest":
        return "int8-folded", export._no_calibration(
            partial(export._store_int8, block=block, table_block=table_block)
        )
    return "int8-gptq", partial(_one_shot_gptq, block=block, table_block=table_block)


def study(
    hf_dir: Path,
    out: Path,
    names: Sequence[str],
    texts: Sequence[str],
    calibration: Sequence[str],
    report: Callable[[str], None] = print,
    max_length: int = 128,
    held_out: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Export `hf_dir` as each variant under `out` and compare its scores of `texts` with PyTorch's,
    and of `held_out` (e.g. the test split) when given: the largest difference is a tail figure, and
    a layout's maximum on one split's comments can be half its maximum on another's."""
    from models.labels import LABEL_NAMES
    from models.transformer import MODEL_FILE, TransformerBackend
    from training.export import TorchBackend, export_onnx, onnx_network_scores, parity_report

    chosen = {name: variant(name) for name in names}  # every name checked before the long part
    out.mkdir(parents=True, exist_ok=True)
    torch_network = TorchBackend.load(hf_dir, max_length)
    reference = torch_network.predict_raw(texts)
    held_out = list(held_out)
    held_out_reference = torch_network.predict_raw(held_out) if held_out else None
    results: dict[str, dict[str, Any]] = {}
    for name, (served, quantizer) in chosen.items():
        start = time.perf_counter()
        folder = out / name
        saved = export.QUANTIZERS.get(served)
        export.QUANTIZERS[served] = quantizer
        try:
            export_onnx(hf_dir, folder, max_length=max_length, method=served, calibration_texts=calibration)
        finally:
            if saved is not None:
                export.QUANTIZERS[served] = saved
        backend = TransformerBackend.load(folder, len(LABEL_NAMES))
        scores = onnx_network_scores(backend, texts)
        parity = parity_report(backend, reference, scores)
        worst = np.sort(np.abs(reference - scores).max(axis=1))[::-1][:5]
        results[name] = {
            "size_mb": (folder / MODEL_FILE).stat().st_size / 1e6,
            "max_abs_diff": parity["max_abs_diff"],
            "mean_abs_diff": parity["mean_abs_diff"],
            "five_largest": [float(x) for x in worst],
        }
        if held_out_reference is not None:
            other = parity_report(backend, held_out_reference, onnx_network_scores(backend, held_out))
            results[name]["held_out_max_abs_diff"] = other["max_abs_diff"]
        results[name]["seconds"] = time.perf_counter() - start
        r = results[name]
        held = f"  held-out max {r['held_out_max_abs_diff']:.4f}" if "held_out_max_abs_diff" in r else ""
        report(
            f"{name:<18} {r['size_mb']:>6.1f} MB  max {r['max_abs_diff']:.4f}  mean {r['mean_abs_diff']:.5f}"
            f"  five largest {' '.join(f'{x:.4f}' for x in r['five_largest'])}{held}  ({r['seconds']:.0f} s)"
        )
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per variant; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.export_study", description=__doc__)
    parser.add_argument("hf_dir", type=Path, help="fine-tuned save_pretrained folder")
    parser.add_argument("out", type=Path, help="folder for the exports and results.json")
    parser.add_argument("variants", nargs="+", help="export methods or layouts (see above)")
    parser.add_argument(
        "--calibration-texts",
        type=int,
        help="training comments that calibrate GPTQ and int8-token (default: as moderation train)",
    )
    parser.add_argument(
        "--test",
        action="store_true",
        help="also give each variant's largest difference on the test split (held-out comments)",
    )
    args = parser.parse_args(argv)
    if args.calibration_texts is not None and args.calibration_texts < 1:
        parser.error(f"--calibration-texts must be at least 1, got {args.calibration_texts}")
    for name in args.variants:
        try:
            variant(name)
        except ValueError as exc:
            parser.error(str(exc))
    if not (args.hf_dir / "config.json").is_file():
        parser.error(f"{args.hf_dir} is not a save_pretrained folder (no config.json)")

    from training.dataset import add_cross_corpus_negatives, build_dataset
    from training.export import CALIBRATION_TEXTS
    from training.options import TrainConfig

    # The rows and calibration comments of `moderation train` with its default configuration.
    config = TrainConfig()
    rows = add_cross_corpus_negatives(
        build_dataset(),
        weight=config.negative_weight,
        max_per_corpus=config.max_negatives_per_corpus,
        seed=config.seed,
    )
    train = rows[rows["split"] == "train"].reset_index(drop=True)
    texts = rows.loc[rows["split"] == "validation", "text"].tolist()
    n_calibration = args.calibration_texts or CALIBRATION_TEXTS
    calibration = train.sample(n=min(len(train), n_calibration), random_state=config.transformer.seed)
    held_out = rows.loc[rows["split"] == "test", "text"].tolist() if args.test else []
    print(
        f"{args.hf_dir}: {len(texts)} validation comments"
        + (f" ({len(held_out)} test comments held out)" if held_out else "")
        + ", max |score difference| from PyTorch"
    )
    study(args.hf_dir, args.out, args.variants, texts, calibration["text"].tolist(), held_out=held_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
