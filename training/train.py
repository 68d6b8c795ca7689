"""`moderation train`: data, fitting, calibration and thresholds on validation, evaluation, storage."""

from __future__ import annotations

import json
import logging
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.artifact import ArtifactInfo
from models.calibration import Calibrator, fit_calibrator
from models.errors import ArtifactError, NoActiveModelError
from models.identity import IDENTITY_TERMS, IdentityCut, mentions_identity
from models.labels import LABEL_NAMES
from models.registry import Registry
from models.scoring import Backend, Model, library_version
from training import metrics
from training.dataset import NEGATIVE_SOURCES, add_cross_corpus_negatives, build_dataset, dataset_hash
from training.evaluate import EvalData, evaluate_model, load_eval_data
from training.feedback import FeedbackSet, feedback_markdown, feedback_section, format_feedback, load_feedback
from training.model_card import render_model_card
from training.options import TrainConfig
from training.report import SCORES_FILE, EvalInputs, format_summary, load_scores, write_report

if TYPE_CHECKING:
    from models.transformer import TransformerBackend

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
# Thresholds of the borrowed-negative labels also keep the flag rate on other domains' validation
# rows under this cap, so that polite reader comments are not flagged as spam or disinformation.
CROSS_DOMAIN_FPR_CAP = 0.02
# A label's cut is the highest whose validation F1 is within this of the best (metrics.choose_threshold):
# about one standard error of F1 on a few thousand validation rows, so cuts that validation cannot
# tell apart are settled toward fewer flags instead of by noise.
THRESHOLD_F1_TOLERANCE = 0.005
# A label with fewer validation positives than this (threat: 12) is calibrated by Platt scaling,
# two parameters, instead of isotonic regression, which follows each positive, and its cut is the
# one that maximises the F1 expected under those calibrated scores (metrics.expected_f1_threshold).
# Chosen by split-half of the shipped model's validation rows (training/EXPERIMENTS.md).
RARE_LABEL_POSITIVES = 30
IDENTITY_CAPPED = ("toxicity",)
# The PyTorch and served ONNX network's validation scores, passed from the export to the parity
# check; never stored.
_NETWORK_SCORES = "_network_scores"
LIBRARIES = ("scikit-learn", "numpy", "scipy", "onnxruntime", "tokenizers", "torch", "transformers")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries an artifact depends on."""
    versions = {lib: library_version(lib) for lib in LIBRARIES}
    versions["python"] = platform.python_version()
    versions["moderation"] = library_version("moderation")
    return versions


def validation_rows(df: pd.DataFrame, config: TrainConfig | None = None) -> pd.DataFrame:
    """The validation rows `moderation train` calibrates on: `df`'s validation split with the
    borrowed negatives of `config` (default: the default training configuration)."""
    config = config or TrainConfig()
    augmented = add_cross_corpus_negatives(
        df, weight=config.negative_weight, max_per_corpus=config.max_negatives_per_corpus, seed=config.seed
    )
    return augmented[augmented["split"] == "validation"].reset_index(drop=True)


def label_cut(
    raw: FloatArray, y: FloatArray, w: FloatArray, label: str, method: str, *, rare: bool | None = None
) -> tuple[Calibrator, float]:
    """One label's calibrator and cut, fitted on its validation rows (both classes present).

    The cut is the highest within THRESHOLD_F1_TOLERANCE of the best observed F1 after `method`'s
    calibration; a rare label (under RARE_LABEL_POSITIVES positives, or `rare=True`) gets Platt
    scaling and the expected-F1 cut instead. Labels with borrowed negatives then raise the cut so
    that at most CROSS_DOMAIN_FPR_CAP of those are flagged.
    """
    positives = float(w[y >= 0.5].sum())
    if rare is None:
        rare = positives < RARE_LABEL_POSITIVES
    if rare:
        cal = fit_calibrator(raw, y, w, method="platt")
        p = cal.apply(raw)
        threshold = metrics.expected_f1_threshold(p, w)
        logger.info(
            "label %s: %.0f validation positives; platt calibration, expected-F1 cut", label, positives
        )
    else:
        cal = fit_calibrator(raw, y, w, method=method)  # type: ignore[arg-type]
        p = cal.apply(raw)
        threshold = metrics.choose_threshold(y, p, w, f1_tolerance=THRESHOLD_F1_TOLERANCE)
    if label in NEGATIVE_SOURCES:
        borrowed = (w < 1.0) & (y == 0)
        if borrowed.any():
            cap = float(np.quantile(p[borrowed], 1.0 - CROSS_DOMAIN_FPR_CAP))
            threshold = max(threshold, min(cap + 1e-6, 0.999))
    return cal, float(threshold)


def calibrate_and_threshold(
    raw: FloatArray, val: pd.DataFrame, method: str, *, identity_fpr_cap: float | None = None
) -> tuple[dict[str, Calibrator], dict[str, float], IdentityCut | None]:
    """Fit per-label calibrators and F1-optimal thresholds (within THRESHOLD_F1_TOLERANCE) on the
    validation rows only; labels with under RARE_LABEL_POSITIVES positives get Platt scaling and
    the expected-F1 cut instead.

    With `identity_fpr_cap`, IDENTITY_CAPPED labels also get a cut for comments that name an
    identity group ("gay", "muslim", "black", ... the terms bias audits probe): the lowest cut, at
    or above the label's own, that flags at most that share of the non-toxic validation comments
    naming one. F1 on toxic-heavy corpora alone picks cuts that flag neutral sentences about
    identities; applying the capped cut to every comment instead costs recall on all the others.
    Returns the calibrators, the thresholds and the identity cut (None without a cap).
    """
    calibrators: dict[str, Calibrator] = {}
    thresholds: dict[str, float] = {}
    identity_thresholds: dict[str, float] = {}
    mentions = mentions_identity(val["text"].tolist()) if identity_fpr_cap is not None else None
    for j, label in enumerate(LABEL_NAMES):
        y = val[label].to_numpy(dtype=np.float64)
        w = val[f"weight_{label}"].to_numpy(dtype=np.float64)
        rows = (w > 0) & ~np.isnan(y)
        if rows.sum() == 0 or len(np.unique(y[rows])) < 2:
            logger.warning("label %s: validation has one class; identity calibration, threshold 0.5", label)
            calibrators[label], thresholds[label] = Calibrator(), 0.5
            continue
        cal, threshold = label_cut(raw[rows, j], y[rows], w[rows], label, method)
        p = cal.apply(raw[rows, j])
        if mentions is not None and identity_fpr_cap is not None and label in IDENTITY_CAPPED:
            neutral = mentions[rows] & (y[rows] < 0.5) & (w[rows] >= 1.0)
            if neutral.sum() >= 20:
                cap = float(np.quantile(p[neutral], 1.0 - identity_fpr_cap))
                identity_thresholds[label] = float(max(threshold, min(cap + 1e-6, 0.999)))
                logger.info(
                    "label %s: %d neutral identity-mentioning validation rows; identity cut %.3f",
                    label,
                    neutral.sum(),
                    identity_thresholds[label],
                )
            else:
                logger.warning(
                    "label %s: %d neutral identity rows, too few for an identity cut", label, neutral.sum()
                )
        calibrators[label], thresholds[label] = cal, float(threshold)
        logger.info("label %s: %s calibration, threshold %.3f", label, cal.method, threshold)
    identity = IdentityCut(IDENTITY_TERMS, identity_thresholds) if identity_thresholds else None
    return calibrators, thresholds, identity


def _fit_backend(
    config: TrainConfig,
    train: pd.DataFrame,
    val: pd.DataFrame,
    registry: Registry,
    linear_train: pd.DataFrame | None = None,
) -> tuple[Backend, dict[str, Any]]:
    if config.kind == "linear":
        from training.linear import fit_linear

        backend, heads = fit_linear(train, config.linear, val)
        return backend, {"linear_heads": heads}
    if config.kind == "ensemble":
        return _fit_ensemble(config, train, val, registry, train if linear_train is None else linear_train)
    return _fit_transformer(config, train, val, registry)


def _fit_ensemble(
    config: TrainConfig,
    train: pd.DataFrame,
    val: pd.DataFrame,
    registry: Registry,
    linear_train: pd.DataFrame,
) -> tuple[Backend, dict[str, Any]]:
    """Both models (the linear one on `linear_train`), blended per label with weights chosen on validation."""
    from models.ensemble import EnsembleBackend
    from training.ensemble import fit_weights
    from training.linear import fit_linear

    linear_backend, heads = fit_linear(linear_train, config.linear, val)
    transformer_backend, fitted = _fit_transformer(config, train, val, registry)
    texts = val["text"].tolist()
    weights, report = fit_weights(
        transformer_backend.predict_raw(texts), linear_backend.predict_raw(texts), val
    )
    backend = EnsembleBackend(transformer_backend, linear_backend, weights, LABEL_NAMES)
    return backend, {**fitted, "linear_heads": heads, "ensemble_weights": report}


def _with_pan_windows(config: TrainConfig, train: pd.DataFrame) -> pd.DataFrame:
    """The fine-tuning rows: `train` plus comment-length windows of long PAN posts (training.windows)."""
    if not (config.transformer.pan_windows and (train["corpus"] == "pan2024").any()):
        return train
    from training.corpora import DEFAULT_DATA_DIR, load_pan_roles
    from training.windows import pan_windows

    windows = pan_windows(train, load_pan_roles(config.data_dir or DEFAULT_DATA_DIR), seed=config.seed)
    logger.info(
        "PAN windows: %d rows (%d conspiracy positives) added to training",
        len(windows),
        int((windows["conspiracy"] == 1.0).sum()) if len(windows) else 0,
    )
    return pd.concat([train, windows], ignore_index=True)


def _fit_transformer(
    config: TrainConfig, train: pd.DataFrame, val: pd.DataFrame, registry: Registry
) -> tuple[TransformerBackend, dict[str, Any]]:
    """Fine-tune, export to ONNX int8 and check parity; the served backend is the int8 model."""
    from training.transformer import config_dict, fine_tune, load_fine_tuned, validation_score

    tf = config.transformer
    span_train = train
    work = tf.checkpoint_dir or registry.root / "checkpoints" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    tf.checkpoint_dir = work
    if len(tf.fine_tuned) > 1:
        from training.soup import soup

        result = load_fine_tuned(soup(tf.fine_tuned, work / "soup"))
        logger.info(
            "using the soup of %d fine-tuned models: %s",
            len(tf.fine_tuned),
            ", ".join(map(str, tf.fine_tuned)),
        )
    elif tf.fine_tuned:
        result = load_fine_tuned(tf.fine_tuned[0])
        logger.info(
            "using the fine-tuned model in %s (best validation macro AUC %s)",
            tf.fine_tuned[0],
            "not recorded" if np.isnan(result.best_val_auc) else f"{result.best_val_auc:.4f}",
        )
    else:
        result = fine_tune(_with_pan_windows(config, train), val, tf, work / "hf")
    # Imported after the long fine-tuning so that a rerun with the same --checkpoint-dir resumes.
    from models.transformer import TransformerBackend
    from training.export import (
        CALIBRATION_TEXTS,
        DEFAULT_METHOD,
        MAX_PARITY,
        PARITY_FALLBACK,
        TorchBackend,
        export_onnx,
        onnx_network_scores,
        parity_report,
    )
    from training.span_head import fit_span_head

    head = fit_span_head(result.hf_dir, span_train, val, max_length=tf.max_length, seed=tf.seed)

    calibration = span_train.sample(n=min(len(span_train), CALIBRATION_TEXTS), random_state=tf.seed)
    calibration_texts = calibration["text"].tolist()
    texts = val["text"].tolist()
    # One PyTorch pass over validation: the reference for every export tried here; it and the
    # kept export's scores also give the served-score parity that train() reports.
    reference = TorchBackend.load(result.hf_dir, tf.max_length).predict_raw(texts)
    best_val_auc = result.best_val_auc
    if np.isnan(best_val_auc):  # a soup (or a folder without its history): measured on this run's rows
        best_val_auc, _ = validation_score(reference, val)
        logger.info("validation macro AUC of the network, measured by this run: %.4f", best_val_auc)
    onnx_dir = work / "onnx"
    attempts: list[dict[str, Any]] = []
    method: str | None = DEFAULT_METHOD
    while method is not None:
        if onnx_dir.exists():
            shutil.rmtree(onnx_dir)
        onnx_dir.mkdir(parents=True)
        export_onnx(
            result.hf_dir,
            onnx_dir,
            max_length=tf.max_length,
            quantize=True,
            method=method,
            calibration_texts=calibration_texts,
        )
        backend = TransformerBackend.load(onnx_dir, len(LABEL_NAMES))
        served = onnx_network_scores(backend, texts)
        parity = parity_report(backend, reference, served)
        attempts.append({"quantization": method, "max_abs_diff": parity["max_abs_diff"]})
        logger.info("ONNX %s parity on validation: max |difference| %.4f", method, parity["max_abs_diff"])
        if parity["max_abs_diff"] <= MAX_PARITY:
            break
        method = PARITY_FALLBACK.get(method)
        if method is None:
            logger.warning("no export reached parity %.2f; serving the last one tried", MAX_PARITY)
        else:
            logger.info("over the %.2f parity bar: exporting again as %s", MAX_PARITY, method)
    # The served-score parity is measured once the artifact is calibrated (train()).
    return backend, {
        "export_attempts": attempts,
        _NETWORK_SCORES: (reference, served),
        "config": config_dict(tf),
        "history": result.history,
        "best_step": result.best_step,
        "best_val_macro_auc": best_val_auc,
        "hf_dir": str(result.hf_dir),
        "fine_tuned_elsewhere": result.made_by,
        "span_head": head.report if head is not None else None,
    }


def baseline_evaluation(
    registry: Registry, data: EvalData
) -> tuple[dict[str, Any] | None, EvalInputs | None]:
    """The active model's report on the same test rows, for the comparison section, and its scores
    on them for paired intervals (None where its stored evaluation kept no scores)."""
    try:
        active = registry.load()
    except (NoActiveModelError, ArtifactError) as exc:
        logger.info("no comparison: %s", exc)
        return None, None
    if active.info.path is not None:
        saved = active.info.path / "report.json"
        if saved.is_file():
            report: dict[str, Any] = json.loads(saved.read_text(encoding="utf-8"))
            if report.get("test_data_hash") == data.data_hash:
                return report, load_scores(active.info.path / SCORES_FILE, data.data_hash)
    return evaluate_model(active, data)


def _load_feedback(config: TrainConfig, df: pd.DataFrame) -> FeedbackSet | None:
    """The feedback corpus, cleaned against every corpus's standing splits (not only those trained on)."""
    if config.feedback is None:
        return None
    everything = df if config.corpora is None else None
    return load_feedback(
        config.feedback, data_dir=config.data_dir, frame=everything, weight=config.feedback_weight
    )


def _feedback_report(model: Model, feedback: FeedbackSet, registry: Registry | None) -> dict[str, Any]:
    """The held-out feedback slice's figures, for this model and (with `registry`) the active one."""
    baseline = None
    if registry is not None:
        try:
            baseline = registry.load()
        except (NoActiveModelError, ArtifactError) as exc:
            logger.info("no feedback comparison: %s", exc)
    return feedback_section(model, feedback, baseline)


def headline_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The few numbers kept in meta.json (the full report sits beside it)."""
    per_label = {k: v for k, v in (report.get("labels") or {}).items() if isinstance(v, dict)}
    aucs = [v["roc_auc"] for v in per_label.values() if isinstance(v.get("roc_auc"), float)]
    bias = report.get("bias") or {}
    return {
        "macro_roc_auc": float(np.mean(aucs)) if aucs else None,
        "roc_auc": {k: v.get("roc_auc") for k, v in per_label.items()},
        "task_metrics": report.get("task_metrics") or {},
        "cross_domain_all": {k: v.get("all") for k, v in (report.get("cross_domain") or {}).items()},
        "bias_fpr": bias.get("fpr"),
        "bias_roc_auc": bias.get("roc_auc"),
    }


def train(config: TrainConfig, registry: Registry, command: str) -> tuple[ArtifactInfo, dict[str, Any]]:
    """Train, calibrate, evaluate and store a new artifact (not promoted); returns it and its report."""
    started = datetime.now(UTC)
    df = (
        build_dataset(config.data_dir, config.corpora)
        if config.data_dir
        else build_dataset(corpora=config.corpora)
    )
    data = load_eval_data(config.data_dir, frame=df)
    feedback = _load_feedback(config, df)
    augmented = add_cross_corpus_negatives(
        df, weight=config.negative_weight, max_per_corpus=config.max_negatives_per_corpus, seed=config.seed
    )
    train_rows = augmented[augmented["split"] == "train"]
    if config.max_train_samples is not None and len(train_rows) > config.max_train_samples:
        train_rows = train_rows.sample(n=config.max_train_samples, random_state=config.seed)
    if feedback is not None:  # all of it, whatever the sample of the corpora
        train_rows = pd.concat([train_rows, feedback.train], ignore_index=True)
    train_rows = train_rows.reset_index(drop=True)
    linear_rows: pd.DataFrame | None = None  # the ensemble's linear half, when it trains on other rows
    swapped_rows = 0
    if config.identity_swap != "none":
        from training.augment import add_identity_swaps

        swapped = add_identity_swaps(train_rows, config.seed)
        swapped_rows = len(swapped) - len(train_rows)
        if config.identity_swap == "linear" and config.kind == "ensemble":
            linear_rows = swapped
            logger.info("identity swap: %d counterfactual rows added for the linear half", swapped_rows)
        else:
            train_rows = swapped
            logger.info("identity swap: %d counterfactual training rows added", swapped_rows)
    val = augmented[augmented["split"] == "validation"].reset_index(drop=True)
    logger.info("training %s on %d rows, calibrating on %d", config.kind, len(train_rows), len(val))
    backend, fitted = _fit_backend(config, train_rows, val, registry, linear_rows)
    parity_scores = fitted.pop(_NETWORK_SCORES, None)
    calibrators, thresholds, identity_cut = calibrate_and_threshold(
        backend.predict_raw(val["text"].tolist()),
        val,
        config.calibration,
        identity_fpr_cap=config.identity_fpr_cap,
    )
    baseline, baseline_scores = baseline_evaluation(registry, data) if config.compare else (None, None)

    with registry.stage(config.kind) as staged:
        files = backend.save(staged.path)  # type: ignore[attr-defined]
        staged.info = ArtifactInfo(
            id=staged.id,
            kind=config.kind,
            labels=LABEL_NAMES,
            thresholds=thresholds,
            calibration=calibrators,
            identity_cut=identity_cut,
            files=dict.fromkeys(files, ""),
            versions=library_versions(),
            created_at=started.isoformat(timespec="seconds"),
            data_hash=dataset_hash(pd.concat([train_rows if linear_rows is None else linear_rows, val])),
            command=command,
            training={
                "config": _jsonable(config),
                "fitted": fitted,
                "train_rows": len(train_rows),
                "validation_rows": len(val),
                "feedback_rows": len(feedback.train) if feedback is not None else 0,
                "identity_swap_rows": swapped_rows,
                "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            },
        )
        registry.seal(staged)
        model = Model.load(staged.path)  # evaluate exactly what will be served
        if fitted.get("hf_dir"):
            from training.parity import served_parity

            check = served_parity(model, Path(fitted["hf_dir"]), val["text"].tolist(), scores=parity_scores)
            fitted["parity_validation"] = check.pop("network")
            logger.info("ONNX int8 parity on validation: %s", fitted["parity_validation"])
            logger.info(
                "served-score parity on validation: max %.4f, %d flags changed",
                check["served_max_abs_diff"],
                check["flag_changes"],
            )
            fitted["parity_served"] = check
        report, inputs = evaluate_model(model, data, baseline=baseline, baseline_scores=baseline_scores)
        if feedback is not None:
            report["feedback"] = _feedback_report(model, feedback, registry if config.compare else None)
        write_report(report, staged.path, inputs)
        if feedback is not None:
            with (staged.path / "report.md").open("a", encoding="utf-8") as fh:
                fh.write(feedback_markdown(report["feedback"]))
        staged.info.metrics = headline_metrics(report)
        (staged.path / "MODEL_CARD.md").write_text(render_model_card(staged.info, report), encoding="utf-8")
    return staged.info, report


def _jsonable(obj: Any) -> Any:
    from dataclasses import asdict, is_dataclass
    from pathlib import Path

    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def summary(report: dict[str, Any]) -> str:
    """The terminal summary of a report (with the held-out feedback slice, when trained with feedback)."""
    text = format_summary(report)
    if report.get("feedback"):
        text += "\n" + format_feedback(report["feedback"])
    return text


def recalibrate(
    registry: Registry, artifact_id: str, command: str, *, data_dir: Path | None = None
) -> tuple[ArtifactInfo, dict[str, Any]]:
    """A new artifact with the same network files and freshly fitted calibration and thresholds.

    The calibrators and cuts are refitted on the validation split with this code's calibration
    (the source's method, identity cap and negatives settings), then the new artifact is evaluated
    like a trained one. Nothing is retrained; the source is left as it was. Not promoted.
    """
    from dataclasses import replace

    started = datetime.now(UTC)
    source = registry.get(artifact_id)
    if source.path is None:
        raise ArtifactError(f"{artifact_id}: no folder to copy from")
    model = registry.load(artifact_id)
    settings = dict((source.training or {}).get("config") or {})
    defaults = TrainConfig()
    df = build_dataset(data_dir) if data_dir else build_dataset()
    data = load_eval_data(data_dir, frame=df)
    augmented = add_cross_corpus_negatives(
        df,
        weight=float(settings.get("negative_weight", defaults.negative_weight)),
        max_per_corpus=settings.get("max_negatives_per_corpus", defaults.max_negatives_per_corpus),
        seed=int(settings.get("seed", defaults.seed)),
    )
    val = augmented[augmented["split"] == "validation"].reset_index(drop=True)
    method = str(settings.get("calibration", defaults.calibration))
    cap = settings.get("identity_fpr_cap")
    logger.info("recalibrating %s on %d validation rows (%s)", artifact_id, len(val), method)
    calibrators, thresholds, identity_cut = calibrate_and_threshold(
        model.raw_scores(val["text"].tolist()),
        val,
        method,
        identity_fpr_cap=float(cap) if cap is not None else None,
    )
    baseline, baseline_scores = baseline_evaluation(registry, data)
    with registry.stage(source.kind) as staged:
        for name in source.files:
            target = staged.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.path / name, target)
        staged.info = replace(
            source,
            id=staged.id,
            thresholds=thresholds,
            calibration=calibrators,
            identity_cut=identity_cut,
            files=dict.fromkeys(source.files, ""),
            created_at=started.isoformat(timespec="seconds"),
            command=command,
            metrics={},
            training={**(source.training or {}), "recalibrated_from": source.id},
            path=None,
        )
        registry.seal(staged)
        new_model = Model.load(staged.path)
        report, inputs = evaluate_model(new_model, data, baseline=baseline, baseline_scores=baseline_scores)
        write_report(report, staged.path, inputs)
        staged.info.metrics = headline_metrics(report)
        (staged.path / "MODEL_CARD.md").write_text(render_model_card(staged.info, report), encoding="utf-8")
    return staged.info, report
