"""Feedback loop: scores suggested through comments:suggestscore, and the log of retraining runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create score_suggestions and retrain_runs."""
    op.create_table(
        "score_suggestions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("community_id", sa.String(200), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_score_suggestions"),
    )
    op.create_index("ix_score_suggestions_created", "score_suggestions", ["created_at"])

    op.create_table(
        "retrain_runs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        _ts("started_at"),
        _ts("finished_at"),
        _ts("feedback_until", nullable=True),
        sa.Column("feedback_rows", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_retrain_runs"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("retrain_runs")
    op.drop_index("ix_score_suggestions_created", table_name="score_suggestions")
    op.drop_table("score_suggestions")
