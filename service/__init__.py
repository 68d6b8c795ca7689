"""HTTP service: scoring API (and, later, the review queue)."""
