"""The `moderation train` / `evaluate` commands end to end (slow: they train on the real corpora)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cli.main import main
from models.registry import Registry

QUICK = ["--max-train-samples", "400", "--C-grid", "1", "--word-features", "3000", "--char-features", "6000"]


def run(registry_root: Path, *argv: str) -> int:
    return main(["--registry", str(registry_root), *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-train-samples", "5"], "max_train_samples must be at least 10"),
        (["--negative-weight", "2"], "negative_weight must be within 0..1"),
        (["--data-dir", "/nonexistent/corpora"], "/nonexistent/corpora"),
        (["--corpora", "civil_comments,reddit"], "reddit"),
        (["--fine-tuned", "."], "--fine-tuned needs --kind transformer or ensemble"),
        (["--kind", "ensemble", "--fine-tuned", "/nonexistent/hf"], "/nonexistent/hf: no such folder"),
        (["--kind", "ensemble", "--fine-tuned", ".", "/nonexistent/hf"], "/nonexistent/hf: no such folder"),
        (["--kind", "ensemble", "--fine-tuned", ".", "."], "--fine-tuned: a folder is named twice"),
        (["--kind", "ensemble", "--fine-tuned", ".", "/"], ".: not a fine-tuned model folder"),
        (["--corpus-repeats", "olid=0"], "olid: N must be >= 1"),
        (["--corpus-repeats", "olid=two"], "olid: N must be a whole number"),
        (["--corpus-repeats", "reddit=2"], "got 'reddit=2'"),
        (["--corpus-repeats", "olid"], "expected CORPUS=N"),
        (
            ["--kind", "transformer", "--identity-swap", "linear"],
            "--identity-swap linear needs --kind linear",
        ),
    ],
)
def test_train_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(tmp_path / "reg", "train", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "reg" / "artifacts").exists() or not any(
        (tmp_path / "reg" / "artifacts").iterdir()
    )


@pytest.mark.parametrize(
    ("argv", "scope"),
    [([], "none"), (["--identity-swap"], "all"), (["--identity-swap", "linear"], "linear")],
)
def test_identity_swap_scope_option(argv: list[str], scope: str) -> None:
    from cli.main import build_parser
    from training.options import config_from_args

    args = build_parser().parse_args(["train", "--kind", "ensemble", *argv])
    assert config_from_args(args).identity_swap == scope


def test_corpus_repeats_replace_the_defaults_of_the_corpora_named() -> None:
    from cli.main import build_parser
    from training.options import config_from_args

    def repeats(*argv: str) -> dict[str, int]:
        return config_from_args(
            build_parser().parse_args(["train", "--kind", "ensemble", *argv])
        ).transformer.corpus_repeats

    assert repeats() == {"pan2024": 3, "prct_youtube": 6, "tubespam": 2}
    assert repeats("--corpus-repeats", " olid=2, tubespam=1 ") == {
        "pan2024": 3,
        "prct_youtube": 6,
        "tubespam": 1,
        "olid": 2,
    }


def test_repeat_native_only_is_off_unless_asked() -> None:
    from cli.main import build_parser
    from training.options import config_from_args

    def flag(*argv: str) -> bool:
        args = build_parser().parse_args(["train", "--kind", "ensemble", *argv])
        return config_from_args(args).transformer.repeat_native_only

    assert flag() is False
    assert flag("--repeat-native-only", "--corpus-repeats", "constraint=2") is True


def test_split_hashtags_is_off_unless_asked() -> None:
    from cli.main import build_parser
    from training.options import config_from_args

    def flag(*argv: str) -> bool:
        args = build_parser().parse_args(["train", "--kind", "ensemble", *argv])
        return config_from_args(args).transformer.split_hashtags

    assert flag() is False
    assert flag("--split-hashtags") is True


def test_identity_swap_unknown_scope_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--identity-swap", "transformer"])
    assert exc.value.code == 2
    assert "invalid choice: 'transformer'" in capsys.readouterr().err


def test_linear_nb_option(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import build_parser
    from training.options import config_from_args

    def nb(*argv: str) -> str:
        return config_from_args(build_parser().parse_args(["train", *argv])).linear.nb_weighting

    assert nb() == "off"
    assert nb("--linear-nb", "auto") == "auto"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--linear-nb", "maybe"])
    assert exc.value.code == 2
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


@pytest.mark.slow
def test_train_evaluate_promote_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "reg"
    assert run(root, "train", "--kind", "linear", "--no-compare", "--identity-fpr-cap", "0.05", *QUICK) == 0
    out = capsys.readouterr().out
    assert "toxicity" in out and "cross-domain" in out
    registry = Registry(root, shipped_dir=None)
    [info] = registry.list()
    folder = registry.path(info.id)
    for name in ("meta.json", "model.joblib", "MODEL_CARD.md", "report.json", "report.md", "eval_scores.npz"):
        assert (folder / name).is_file(), name
    assert list((folder / "plots").glob("pr_*.png")) and list((folder / "plots").glob("calibration_*.png"))
    report = json.loads((folder / "report.json").read_text())
    assert report["labels"]["toxicity"]["roc_auc"] > 0.6  # 400 rows already learn something
    assert {"spam", "misinformation", "conspiracy", "toxicity"} <= set(report["cross_domain"])
    assert report["bias"]["roc_auc"] is not None and report["bias"]["terms"]
    assert info.training["train_rows"] == 400 and info.data_hash and info.versions["scikit-learn"]
    assert "Identity bias" in (folder / "MODEL_CARD.md").read_text()
    # The cap gives comments that name an identity group their own, stricter toxicity cut.
    assert info.identity_cut is not None and set(info.identity_cut.thresholds) == {"toxicity"}
    assert info.identity_cut.thresholds["toxicity"] >= info.thresholds["toxicity"]
    assert report["identity_thresholds"] == pytest.approx(dict(info.identity_cut.thresholds))
    assert "names an identity group" in (folder / "MODEL_CARD.md").read_text()
    assert json.loads((folder / "meta.json").read_text())["format_version"] == 2

    # training never changes the active model
    assert run(root, "models", "rollback") == 2
    # 400 rows do not beat the shipped model: the gate refuses, --force with a reason promotes.
    assert run(root, "models", "promote", info.id, "--force", "--reason", "test") == 0
    assert registry.active_id() == info.id

    src = tmp_path / "backlog.csv"
    with src.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "comment"])
        writer.writerows(
            [[i, text] for i, text in enumerate(["You are a stupid idiot", "Thanks for the article"])]
        )
    dst = tmp_path / "scored.csv"
    assert run(root, "score", str(src), "--text-column", "comment", "-o", str(dst), "--quiet") == 0
    rows = list(csv.DictReader(dst.open()))
    assert len(rows) == 2 and float(rows[0]["score_toxicity"]) > float(rows[1]["score_toxicity"])

    capsys.readouterr()
    assert run(root, "evaluate", info.id, "--out", str(tmp_path / "eval")) == 0
    assert (tmp_path / "eval" / "report.md").is_file()
    again = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert again["labels"]["toxicity"]["roc_auc"] == pytest.approx(report["labels"]["toxicity"]["roc_auc"])

    # A recalibrated copy: the same network files, calibration and cuts refitted, evaluated, not promoted.
    assert run(root, "models", "recalibrate", info.id) == 0
    assert "recalibrated" in capsys.readouterr().out
    [copy] = [other for other in registry.list() if other.id != info.id]
    assert copy.files == info.files and copy.kind == info.kind
    assert copy.training["recalibrated_from"] == info.id and copy.metrics
    assert set(copy.thresholds) == set(info.thresholds)
    assert copy.identity_cut is not None  # refitted with the source's cap
    copy_report = json.loads((registry.path(copy.id) / "report.json").read_text())
    # Compared with the active model row by row, through the scores its evaluation kept.
    paired = copy_report["comparison"]["paired"]["figures"]
    assert paired["roc_auc/toxicity"]["baseline"] == pytest.approx(report["labels"]["toxicity"]["roc_auc"])
    assert paired["roc_auc/toxicity"]["candidate"] == pytest.approx(
        copy_report["labels"]["toxicity"]["roc_auc"]
    )
    assert copy_report["intervals"]["figures"]["roc_auc/toxicity"]["low"] is not None
    assert registry.active_id() == info.id
    assert run(root, "models", "recalibrate", "no-such-model") != 0


@pytest.mark.slow
def test_interrupted_training_leaves_no_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.train

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(training.train, "write_report", boom)
    root = tmp_path / "reg"
    assert run(root, "train", "--kind", "linear", "--no-compare", *QUICK) == 130
    assert list((root / "artifacts").iterdir()) == []


@pytest.mark.slow
def test_train_ensemble_end_to_end_on_fixture_corpora(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fine-tune MiniLM for a few steps, span head, export int8 + parity, blend with linear, evaluate."""
    import shutil

    from models.scoring import Model
    from training.splits import write_split_files

    data = tmp_path / "data"
    shutil.copytree(Path(__file__).parent / "fixtures", data)
    write_split_files(data)
    root = tmp_path / "reg"
    argv = [
        "--data-dir",
        str(data),
        "--no-compare",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-length",
        "32",
    ]
    assert run(root, "train", "--kind", "ensemble", *argv, "--checkpoint-dir", str(tmp_path / "ck")) == 0
    registry = Registry(root, shipped_dir=None)
    [info] = registry.list()
    assert info.kind == "ensemble"
    folder = registry.path(info.id)
    for name in ("model.onnx", "tokenizer.json", "transformer.json", "model.joblib", "ensemble.json"):
        assert name in info.files and (folder / name).is_file(), name
    fitted = info.training["fitted"]
    assert fitted["parity_validation"]["max_abs_diff"] < 0.02
    assert fitted["parity_validation"]["quantization"] == "int8-compact"
    [attempt] = fitted["export_attempts"]  # the default export passed the parity bar: no fallback
    assert attempt["quantization"] == "int8-compact"
    assert attempt["max_abs_diff"] == pytest.approx(fitted["parity_validation"]["max_abs_diff"], abs=1e-9)
    assert set(fitted["ensemble_weights"]) <= set(info.labels)
    served = fitted["parity_served"]  # the blended, calibrated scores, ONNX vs PyTorch network
    assert served["raw_max_abs_diff"] == pytest.approx(fitted["parity_validation"]["max_abs_diff"], abs=1e-6)
    assert 0 <= served["served_max_abs_diff"] < 1 and served["flag_changes"] >= 0
    assert "Served scores" in (folder / "MODEL_CARD.md").read_text()
    model = Model.load(folder)
    assert "toxicity" in model.span_head_labels  # the fixture's civil comments carry spans
    (prediction,) = model.predict(["you are a stupid idiot"])
    assert set(prediction.scores) == set(info.labels)
    assert (folder / "report.json").is_file() and (folder / "MODEL_CARD.md").is_file()

    # The fine-tuned folder reused as if it came from a GPU machine: nothing is fine-tuned again,
    # the artifact records the run that made it, and the network's scores are the same.
    # With a parity bar no export can meet (0 here), the export falls back to int8 weights computed
    # in fp32, then to no int8 at all, and serves the last one.
    # This run also gives the identity swap's copies to the linear half only: the network's rows
    # (and so the span head's and the recorded row count) are the plain ones.
    hf = tmp_path / "ck" / "hf"
    monkeypatch.setattr("training.export.MAX_PARITY", 0.0)
    assert (
        run(root, "train", "--kind", "ensemble", *argv, "--fine-tuned", str(hf), "--identity-swap", "linear")
        == 0
    )
    [second] = [i for i in registry.list() if i.id != info.id]
    assert second.training["config"]["identity_swap"] == "linear"
    assert second.training["identity_swap_rows"] > 0
    assert second.training["train_rows"] == info.training["train_rows"]
    assert second.data_hash != info.data_hash  # the linear half's rows, copies included
    assert (
        "Only the TF-IDF half trained on the copies"
        in (registry.path(second.id) / "MODEL_CARD.md").read_text()
    )
    again = second.training["fitted"]
    assert again["history"] == fitted["history"] and again["best_step"] == fitted["best_step"]
    assert again["fine_tuned_elsewhere"]["config"]["epochs"] == 1
    assert again["hf_dir"] == str(hf)
    tried = again["export_attempts"]
    assert [a["quantization"] for a in tried] == ["int8-compact", "int8-weights", "fp16-weights"]
    assert tried[0]["max_abs_diff"] == pytest.approx(attempt["max_abs_diff"], abs=1e-9)
    assert again["parity_validation"]["quantization"] == "fp16-weights"
    assert again["parity_validation"]["max_abs_diff"] == pytest.approx(tried[-1]["max_abs_diff"], abs=1e-9)
    assert tried[-1]["max_abs_diff"] < tried[0]["max_abs_diff"]
    served_backend = Model.load(registry.path(second.id)).backend
    assert served_backend.transformer.config.quantization == "fp16-weights"  # type: ignore[attr-defined]
    work = tmp_path / "reg" / "checkpoints"  # the export's work folder: no checkpoint, no new weights
    assert not list(work.rglob("checkpoint.pt")) and not list(work.rglob("model.safetensors"))

    # Two folders make a model soup. Here they hold the same network, so the soup is that network:
    # its validation AUC, measured by this run, is the one the fine-tuning recorded.
    monkeypatch.undo()
    copy = tmp_path / "copy"
    shutil.copytree(hf, copy)
    assert run(root, "train", "--kind", "transformer", *argv, "--fine-tuned", str(hf), str(copy)) == 0
    [third] = [i for i in registry.list() if i.id not in (info.id, second.id)]
    souped = third.training["fitted"]
    assert [m["folder"] for m in souped["fine_tuned_elsewhere"]["soup"]] == [str(hf), str(copy)]
    assert souped["best_val_macro_auc"] == pytest.approx(fitted["best_val_macro_auc"], abs=1e-3)
    assert souped["parity_validation"]["quantization"] == "int8-compact"
    assert "model soup" in (registry.path(third.id) / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["/usr/bin/moderation", "train", "--kind", "ensemble", "--pooling", "mean"],
            "moderation train --kind ensemble --pooling mean",
        ),
        (
            ["-c", "train", "--identity-fpr-cap", "0.05", "--checkpoint-dir", "a b"],
            "moderation train --identity-fpr-cap 0.05 --checkpoint-dir 'a b'",
        ),
        (["/venv/bin/pytest", "-q", "tests/training"], "moderation train --kind linear"),
        ([], "moderation train --kind linear"),
    ],
)
def test_recorded_command_is_the_one_run(argv: list[str], expected: str) -> None:
    from training.cli import command_line

    assert command_line(argv, "linear") == expected
