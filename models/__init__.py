"""Scoring core and artifact store: label schema, registry and scorers."""
