"""Storage of comments, the review queue, policies, webhooks and API keys (SQLAlchemy 2.x)."""
