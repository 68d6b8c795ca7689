"""`moderation feedback export`: moderators' judgments as a corpus the training loader reads."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import InputDataError

if TYPE_CHECKING:
    from service.feedback import FeedbackExample
    from service.storage.db import Database


def open_database(url: str | None) -> Database:
    """The service's database (default $MODERATION_DATABASE_URL), migrated (SQLite) or checked (PostgreSQL)."""
    from service.settings import Settings
    from service.storage import migrate
    from service.storage.db import Database

    database = Database.from_url(url or Settings().database)
    if database.dialect == "sqlite":
        migrate.upgrade(database.engine)
    elif not migrate.is_current(database.engine):
        database.dispose()
        raise InputDataError("the database schema is not current: run `moderation db upgrade` first")
    return database


def export_feedback(
    examples: list[FeedbackExample], out: Path | None, data_dir: Path | None = None
) -> tuple[int, dict[str, int]]:
    """Clean `examples` (see training.feedback) and write them to `out` (stdout when None)."""
    import json

    from training.feedback import clean_records, standing_texts, write_records

    kept, removed = clean_records([e.to_json() for e in examples], standing_texts(data_dir))
    if out is None:
        for record in kept:
            sys.stdout.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        return len(kept), removed
    return write_records(kept, out), removed


def run(args: argparse.Namespace) -> int:
    """Dispatch one `feedback` action; returns the exit code."""
    from service.feedback import collect_feedback
    from training.feedback import HELDOUT_PERCENT
    from training.options import default_feedback_path

    if args.feedback_command != "export":
        raise AssertionError(f"unhandled feedback action {args.feedback_command}")
    out: Path | None = None if args.output == "-" else Path(args.output or default_feedback_path(os.environ))
    database = open_database(args.database_url)
    try:
        examples = collect_feedback(database, site=args.site)
    finally:
        database.dispose()
    written, removed = export_feedback(examples, out, args.data_dir)
    dropped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in removed.items() if n) or "none"
    print(
        f"exported {written} feedback examples to {out or 'stdout'} (dropped: {dropped}); "
        f"about {HELDOUT_PERCENT}% are held out from training for evaluation",
        file=sys.stderr,
    )
    return 0


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `feedback` subcommand to the `moderation` parser."""
    p = sub.add_parser("feedback", help="export moderators' judgments as a training corpus")
    p.add_argument("--database-url", help="service database URL (default $MODERATION_DATABASE_URL)")
    fsub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    fe = fsub.add_parser(
        "export",
        help="write decisions, label corrections and suggested scores as JSON lines "
        "(deduplicated, without any text of a test or validation split or of the bias set)",
    )
    fe.add_argument(
        "-o",
        "--output",
        help="file to write, '-' for stdout (default $MODERATION_DATA_DIR/feedback/feedback.jsonl)",
    )
    fe.add_argument("--site", help="only this site's feedback")
    fe.add_argument("--data-dir", type=Path, help="corpora folder (default training/data)")
    p.set_defaults(func=run)
