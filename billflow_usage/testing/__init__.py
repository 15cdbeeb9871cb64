"""Test helpers shipped for users' own suites: the locmem outbox, a fake Stripe server and a
pytest plugin (registered automatically through the ``pytest11`` entry point)."""
