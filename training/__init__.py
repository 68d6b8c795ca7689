"""Data loading, fitting, evaluation and the retraining CLI of the moderation classifier."""
