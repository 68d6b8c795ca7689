"""Initial schema: comments, history, claims, feedback, policies, webhooks, outbox, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _one_of(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=f"ck_{table}_{column}_valid")


def upgrade() -> None:
    """Create every table, and the triggers that keep comment_events append-only."""
    op.create_table(
        "comments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("thread", sa.String(200), nullable=True),
        sa.Column("author", sa.String(200), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("scores", JSON, nullable=True),
        sa.Column("flagged", JSON, nullable=False),
        sa.Column("spans", JSON, nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("model_id", sa.String(200), nullable=True),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        _ts("reviewed_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
        sa.UniqueConstraint("site", "external_id", name="uq_comments_site_external_id"),
        _one_of("comments", "status", ("approved", "pending", "rejected")),
        _one_of("comments", "decision", ("approve", "review", "reject")),
    )
    op.create_index("ix_comments_queue_priority", "comments", ["site", "needs_review", "priority", "id"])
    op.create_index("ix_comments_queue_oldest", "comments", ["site", "needs_review", "created_at", "id"])

    op.create_table(
        "comment_flags",
        sa.Column("comment_id", ID, nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("comment_id", "label", name="pk_comment_flags"),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name="fk_comment_flags_comment_id_comments", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_comment_flags_label", "comment_flags", ["label", "comment_id"])

    op.create_table(
        "comment_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("comment_id", ID, nullable=False),
        _ts("created_at"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("old_status", sa.String(16), nullable=True),
        sa.Column("new_status", sa.String(16), nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_comment_events"),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name="fk_comment_events_comment_id_comments"
        ),
    )
    op.create_index("ix_comment_events_comment", "comment_events", ["comment_id", "id"])

    op.create_table(
        "claims",
        sa.Column("comment_id", ID, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        _ts("claimed_at"),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("comment_id", name="pk_claims"),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name="fk_claims_comment_id_comments", ondelete="CASCADE"
        ),
    )

    op.create_table(
        "feedback",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("comment_id", ID, nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.ForeignKeyConstraint(["comment_id"], ["comments.id"], name="fk_feedback_comment_id_comments"),
    )
    op.create_index("ix_feedback_site_created", "feedback", ["site", "created_at"])

    op.create_table(
        "site_policies",
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("policy", JSON, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("site", name="pk_site_policies"),
    )

    op.create_table(
        "webhooks",
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("site", name="pk_webhooks"),
    )

    op.create_table(
        "webhook_outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("comment_id", ID, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        _ts("delivered_at", nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_outbox"),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name="fk_webhook_outbox_comment_id_comments"
        ),
        _one_of("webhook_outbox", "state", ("pending", "delivered", "failed")),
    )
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["state", "next_attempt_at"])
    op.create_index("ix_webhook_outbox_site", "webhook_outbox", ["site", "id"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        _one_of("api_keys", "role", ("cms", "moderator", "admin")),
    )

    _append_only_triggers()


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION comment_events_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'comment_events is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER comment_events_append_only BEFORE UPDATE OR DELETE ON comment_events "
            "FOR EACH ROW EXECUTE FUNCTION comment_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER comment_events_no_{verb.lower()} BEFORE {verb} ON comment_events "
                "BEGIN SELECT RAISE(ABORT, 'comment_events is append-only'); END"
            )


def downgrade() -> None:
    """Drop everything."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS comment_events_append_only ON comment_events")
        op.execute("DROP FUNCTION IF EXISTS comment_events_append_only()")
    for table in (
        "api_keys",
        "webhook_outbox",
        "webhooks",
        "site_policies",
        "feedback",
        "claims",
        "comment_events",
        "comment_flags",
        "comments",
    ):
        op.drop_table(table)
