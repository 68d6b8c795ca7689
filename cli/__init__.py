"""The `moderation` command line: a thin dispatcher over training, models and service.

It sits above the three packages so that none of them imports another against the
`training -> models <- service` direction just to offer a subcommand.
"""
