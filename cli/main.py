"""Entry point of the `moderation` console command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from models.errors import InputDataError, ModerationError
from models.registry import Registry, default_registry_dir

logger = logging.getLogger("moderation")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _registry(args: argparse.Namespace) -> Registry:
    return Registry(args.registry or default_registry_dir(os.environ))


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.registry:
        # Workers are separate processes: the setting travels through the environment.
        os.environ["MODERATION_REGISTRY_DIR"] = str(args.registry)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level.lower(),
    )
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from training.cli import train

    return train(args, _registry(args))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from training.cli import evaluate

    return evaluate(args, _registry(args))


def _cmd_score(args: argparse.Namespace) -> int:
    from cli.score import score_file, score_texts

    labels = [x.strip() for x in args.labels.split(",") if x.strip()] if args.labels else None
    if args.text:
        given = [name for name, value in (("an input file", args.input), ("-o", args.output)) if value]
        if given:
            raise InputDataError(f"give --text or an input file, not both (also given: {', '.join(given)})")
        model = _registry(args).load(args.model)
        print(json.dumps(score_texts(model, args.text, labels), ensure_ascii=False, indent=2))
        return EXIT_OK
    missing = [
        name
        for name, value in (
            ("an input file", args.input),
            ("--text-column", args.text_column),
            ("-o", args.output),
        )
        if not value
    ]
    if missing:
        raise InputDataError(
            f"scoring a file needs {', '.join(missing)} (or give --text TEXT to score inline)"
        )
    model = _registry(args).load(args.model)
    n = score_file(
        model,
        Path(args.input),
        Path(args.output),
        args.text_column,
        labels=labels,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    print(f"scored {n} rows with {model.id} -> {args.output}", file=sys.stderr)
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from cli.models_cmd import run

    return run(args, _registry(args))


def _cmd_retrain(args: argparse.Namespace) -> int:
    from cli.retrain_cmd import run

    return run(args, _registry(args))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="moderation", description=__doc__)
    parser.add_argument(
        "--registry", type=Path, help="model registry root (default $MODERATION_DATA_DIR/registry)"
    )
    parser.add_argument("--log-level", default=os.environ.get("MODERATION_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the HTTP service under uvicorn")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=_cmd_serve)

    from training.options import add_train_arguments

    p = sub.add_parser("train", help="train a model on the corpora, evaluate it and store it in the registry")
    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model on the standing test splits and the bias set")
    p.add_argument("model_id", nargs="?", help="artifact id (default: the active model)")
    p.add_argument("--data-dir", type=Path, help="corpora folder (default: training/data)")
    p.add_argument("--out", type=Path, help="write the report here instead of into the artifact")
    p.add_argument("--no-compare", action="store_true", help="do not compare with the active model")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "score",
        help="score a CSV or JSONL file of comments, or texts given with --text",
        description="Score a CSV or JSONL file into a copy with score columns (INPUT --text-column COL"
        " -o OUT), or score a few texts given inline (--text TEXT, repeatable) and print the scores,"
        " flagged labels and spans as JSON, as /v1/moderate answers them (without a site's decision).",
    )
    p.add_argument("input", nargs="?", help="input .csv, .jsonl or .ndjson file")
    p.add_argument("--text-column", help="column (CSV) or field (JSONL) holding the text")
    p.add_argument("-o", "--output", help="output file (same format as the input)")
    p.add_argument(
        "--text", action="append", metavar="TEXT", help="a comment to score and print as JSON (repeatable)"
    )
    p.add_argument("--model", help="artifact id (default: the active model)")
    p.add_argument("--labels", help="comma-separated labels to output (default: all)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("models", help="list, show, promote and roll back models")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    msub.add_parser("list", help="all models, the active one marked")
    ms = msub.add_parser("show", help="metadata and metrics of one model")
    ms.add_argument("model_id")
    mp = msub.add_parser(
        "promote",
        help="make a model the active one, if it is no worse than the active model (exit 1 otherwise)",
    )
    mp.add_argument("model_id")
    mp.add_argument("--force", action="store_true", help="promote even if the gate refuses (needs --reason)")
    mp.add_argument("--reason", help="why the gate is overridden (recorded in the registry's history)")
    from cli.models_cmd import add_gate_arguments

    add_gate_arguments(mp)
    mr = msub.add_parser(
        "recalibrate",
        help="store a copy of a model with calibration and thresholds refitted on validation by this code",
    )
    mr.add_argument("model_id")
    mr.add_argument("--data-dir", type=Path, help="corpora folder (default: training/data)")
    msub.add_parser("rollback", help="reactivate the previously active model")
    msub.add_parser("history", help="promotions and rollbacks, as JSON lines, oldest first")
    p.set_defaults(func=_cmd_models)

    from cli.feedback_cmd import add_arguments as add_feedback_arguments
    from cli.retrain_cmd import add_arguments as add_retrain_arguments

    add_feedback_arguments(sub)
    add_retrain_arguments(sub).set_defaults(func=_cmd_retrain)

    from cli.service_cmd import add_arguments as add_service_arguments

    add_service_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except ModerationError as exc:
        print(f"moderation: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("moderation: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
