"""The example project's own settings, with its tables created directly from the models.

Applying dj-stripe's migrations takes a minute, so the browser test creates the tables as
pytest-django's ``--no-migrations`` does (``migrate --run-syncdb`` with migrations disabled);
CI applies and checks the migrations separately, and ``make demo`` runs them.
"""

from config.settings import *  # noqa: F403


class NoMigrations(dict[str, None]):
    """Every app "has" a migrations module of None: Django then has none to apply."""

    def __contains__(self, app_label: object) -> bool:
        return True

    def __getitem__(self, app_label: str) -> None:
        return None


MIGRATION_MODULES = NoMigrations()
