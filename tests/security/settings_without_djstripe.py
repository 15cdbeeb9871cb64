"""The test settings without dj-stripe in INSTALLED_APPS (see test_checks_settings)."""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "djstripe"]  # noqa: F405
