# Two commands on a fresh machine: `make demo` and `make test`. The matrix CI runs (other
# Pythons, Django series, PostgreSQL) is noxfile.py's: `.venv/bin/nox -l` lists it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A Django series to install (5.2, 6.1); empty: the newest that PYTHON and the pins admit.
DJANGO ?=
PYTEST_ARGS ?=
AUDIT_ARGS ?=

.PHONY: install demo serve test test-all lint audit bench dist clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,celery]' $(if $(DJANGO),'django==$(DJANGO).*')
	touch $@

install: $(VENV)/.installed

demo: install
	cd example_project && ../$(BIN)/python manage.py migrate --noinput --verbosity 0
	cd example_project && ../$(BIN)/python manage.py demo

# After `make demo`: the example's admin at http://127.0.0.1:8000/admin/ until Ctrl-C, with the
# demo's fake Stripe served again from its saved objects (on 12111, or a free port when that
# one is busy: saas/ports.py) and a worker pushing seat changes.
serve: install
	@test -f example_project/fake_stripe_state.json || \
	  { echo "No saved fake Stripe yet: run 'make demo' first."; exit 1; }
	cd example_project && { \
	  port=$$(../$(BIN)/python -m saas.ports 12111); \
	  export FAKE_STRIPE_URL=http://127.0.0.1:$$port; \
	  ../$(BIN)/python -m billflow_usage.testing.fake_stripe --port $$port \
	    --state fake_stripe_state.json & \
	  stripe=$$!; \
	  ../$(BIN)/python manage.py billflow_worker & \
	  worker=$$!; \
	  trap 'kill $$stripe $$worker 2>/dev/null; wait' EXIT; \
	  trap 'exit 130' INT TERM; \
	  ../$(BIN)/python manage.py runserver 127.0.0.1:8000; }

# The suite without the slow browser, fault-injection and scale runs (pyproject's addopts).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The slow runs too, as CI has them; only the 20,000-event soak runs are left out.
test-all: install
	$(BIN)/python -m pytest -m 'not soak' $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy billflow_usage
	$(BIN)/lint-imports

# Known vulnerabilities in what the virtualenv resolved (locked in artifacts/), with pip-audit
# against PyPI's or OSV's advisories; needs pypi.org or api.osv.dev (.ci/audit_dependencies.py).
audit: install
	$(BIN)/python .ci/audit_dependencies.py $(AUDIT_ARGS)

# The docs site as CI builds it: any warning fails (`$(BIN)/mkdocs serve` while writing).
.PHONY: docs quickstart
docs: install
	$(BIN)/mkdocs build --strict

# docs/quickstart.md run as written in a new project: the wheel (dist/*.whl, else one built
# now), `django-admin startproject`, the fake Stripe, delivered usage and a sync in step.
quickstart: install
	$(BIN)/python .ci/quickstart.py

# The sdist (what MANIFEST.in lists) and the wheel built from it, in dist/ (setuptools, in an
# isolated build environment: pip fetches setuptools the first time).
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench
	mkdir -p artifacts && BENCH_DATABASE_URL=sqlite:///$(CURDIR)/artifacts/bench.sqlite3 $(BIN)/python -m bench hot_path

clean:
	rm -rf $(VENV) .venv-* .nox dist build *.egg-info example_project/*.sqlite3 example_project/fake_stripe_state.json artifacts site .pytest_cache .mypy_cache .ruff_cache
