"""An app installed only by the autodiscovery test, whose ``usage.py`` declares a tracker."""
