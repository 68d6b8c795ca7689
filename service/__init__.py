"""HTTP service: scoring API, comment storage, review queue, policies, webhooks."""
