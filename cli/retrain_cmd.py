"""`moderation retrain`: export feedback, train, evaluate and promote through the gate, in one go.

Meant for a nightly cron job: with fewer than `--if-new-feedback N` moderator decisions and
suggested scores since the last retraining it does nothing and exits 0. Otherwise it exports the
feedback, trains a model on the corpora plus the feedback, and promotes it only if the gate
passes (exit 0); a refused model stays in the registry and the command exits 1, so that cron
reports it. Every retraining is recorded in the database (table retrain_runs), refused or not,
and the next run counts new feedback from the newest one it included.

The export goes to --include-feedback FILE (default $MODERATION_DATA_DIR/feedback/feedback.jsonl);
every other option of `moderation train` applies to the training.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from models.errors import InputDataError
from models.registry import Registry


def run(args: argparse.Namespace, registry: Registry) -> int:
    """Retrain when there is enough new feedback; returns the exit code."""
    from cli.feedback_cmd import export_feedback, open_database
    from cli.models_cmd import gate_limits, gated_promote
    from service.feedback import collect_feedback, count_new_feedback, newest_feedback_at
    from service.storage.tables import RetrainRunRow
    from training.options import config_from_args, default_feedback_path
    from training.train import summary, train

    if args.if_new_feedback < 0:
        raise InputDataError("--if-new-feedback must be 0 or more")
    started = datetime.now(UTC)
    database = open_database(args.database_url)
    try:
        with database.transaction() as repo:
            last = repo.last_retrain()
        since = last.feedback_until if last is not None else None
        new = count_new_feedback(database, since)
        if new < args.if_new_feedback:
            print(
                f"{new} new feedback rows since the last retraining "
                f"({since.isoformat() if since else 'never retrained'}); {args.if_new_feedback} needed: "
                "nothing to do",
                file=sys.stderr,
            )
            return 0
        until = newest_feedback_at(database)
        examples = collect_feedback(database)
        path = Path(args.feedback or default_feedback_path(os.environ))
        written, _ = export_feedback(examples, path, args.data_dir)
        print(f"{new} new feedback rows; exported {written} examples to {path}", file=sys.stderr)
        args.feedback = path
        try:
            config = config_from_args(args)
        except ValueError as exc:
            raise InputDataError(str(exc)) from None
        command = f"moderation retrain --if-new-feedback {args.if_new_feedback} --kind {config.kind}"
        info, report = train(config, registry, command)
        print(summary(report))
        print(f"\ntrained {info.id} -> {info.path}")
        code, result = gated_promote(
            registry,
            info.id,
            actor="retrain",
            feedback=path,
            data_dir=config.data_dir,
            limits=gate_limits(args),
        )
        with database.transaction() as repo:
            repo.add_retrain(
                RetrainRunRow(
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    feedback_until=until,
                    feedback_rows=written,
                    model_id=info.id,
                    outcome="promoted" if code == 0 else "refused",
                    detail="; ".join(result.regression_lines()) if result is not None else None,
                )
            )
        return code
    finally:
        database.dispose()


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `retrain` subcommand to the `moderation` parser; returns its parser."""
    from cli.models_cmd import add_gate_arguments
    from training.options import add_train_arguments

    p = sub.add_parser(
        "retrain",
        help="export feedback, train, evaluate and promote through the gate (for cron)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--if-new-feedback",
        type=int,
        required=True,
        metavar="N",
        help="do nothing (exit 0) unless N moderator decisions or suggested scores came in since the last retraining",
    )
    p.add_argument("--database-url", help="service database URL (default $MODERATION_DATABASE_URL)")
    # The training options of `moderation train`; --include-feedback FILE names where the export goes.
    add_train_arguments(p)
    add_gate_arguments(p, sources=False)
    return p
