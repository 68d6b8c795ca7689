"""`moderation db ...` and `moderation keys ...`: the service's database and API keys."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from models.errors import InputDataError

if TYPE_CHECKING:
    from service.storage.db import Database

# The service's modules (SQLAlchemy, FastAPI) are imported by the handlers only, so that the
# other `moderation` commands do not pay for them.
ROLES = ("cms", "moderator", "admin")


def _database(args: argparse.Namespace) -> Database:
    from service.settings import Settings
    from service.storage.db import Database

    return Database.from_url(args.database_url or Settings().database)


def run_db(args: argparse.Namespace) -> int:
    """Dispatch one `db` action; returns the exit code."""
    from service.storage import migrate

    database = _database(args)
    try:
        if args.db_command == "upgrade":
            reached = migrate.upgrade(database.engine, args.revision)
            print(f"database at revision {reached}", file=sys.stderr)
            return 0
        if args.db_command == "current":
            current = migrate.current_revision(database.engine)
            head = migrate.head_revision()
            print(f"{current or 'none'} (head: {head})")
            return 0 if current == head else 1
    finally:
        database.dispose()
    raise AssertionError(f"unhandled db action {args.db_command}")


def _ready(database: Database) -> None:
    from service.storage import migrate

    # SQLite is migrated on demand (as the service does at start-up); PostgreSQL by `db upgrade`.
    if database.dialect == "sqlite":
        migrate.upgrade(database.engine)
    elif not migrate.is_current(database.engine):
        raise InputDataError("the database schema is not current: run `moderation db upgrade` first")


def run_keys(args: argparse.Namespace) -> int:
    """Dispatch one `keys` action; returns the exit code."""
    from service.auth import Role, create_key, revoke_key

    database = _database(args)
    try:
        _ready(database)
        if args.keys_command == "create":
            with database.transaction() as repo:
                key = create_key(repo, Role(args.role), site=args.site, name=args.name)
            # The key alone on stdout, so that `KEY=$(moderation keys create ...)` works.
            print(key.secret)
            scope = f" for site {key.site}" if key.site else ""
            print(f"created {key.role} key {key.id}{scope}; it is shown only once", file=sys.stderr)
            return 0
        if args.keys_command == "list":
            with database.transaction() as repo:
                rows = [
                    {
                        "id": row.id,
                        "role": row.role,
                        "site": row.site,
                        "name": row.name,
                        "created_at": row.created_at.isoformat(),
                        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                    }
                    for row in repo.api_keys()
                ]
            for row in rows:
                print(json.dumps(row))
            return 0
        if args.keys_command == "revoke":
            with database.transaction() as repo:
                revoke_key(repo, args.key_id)
            print(f"revoked key {args.key_id}", file=sys.stderr)
            return 0
    finally:
        database.dispose()
    raise AssertionError(f"unhandled keys action {args.keys_command}")


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `db` and `keys` subcommands to the `moderation` parser."""
    url_help = (
        "database URL (default $MODERATION_DATABASE_URL or sqlite:///$MODERATION_DATA_DIR/moderation.db)"
    )

    p = sub.add_parser("db", help="migrate the service's database")
    p.add_argument("--database-url", help=url_help)
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dsub.add_parser("upgrade", help="apply the migrations")
    up.add_argument("revision", nargs="?", default="head")
    dsub.add_parser("current", help="print the database's revision (exit 1 if not the newest)")
    p.set_defaults(func=run_db)

    p = sub.add_parser("keys", help="create, list and revoke API keys")
    p.add_argument("--database-url", help=url_help)
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    kc = ksub.add_parser("create", help="create a key and print it (alone) on stdout")
    kc.add_argument("--role", required=True, choices=ROLES)
    kc.add_argument("--site", help="limit a cms or moderator key to one site")
    kc.add_argument("--name", help="a note on who uses the key")
    ksub.add_parser("list", help="all keys as JSON lines (never the keys themselves)")
    kr = ksub.add_parser("revoke", help="revoke a key")
    kr.add_argument("key_id")
    p.set_defaults(func=run_keys)
