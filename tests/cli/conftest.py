"""The service's app and database fixtures, for commands that read the service's database."""

from tests.service.conftest import api, make_api, sqlite_template, sqlite_url

__all__ = ["api", "make_api", "sqlite_template", "sqlite_url"]
