# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,celery]'
	touch $@

install: $(VENV)/.installed

demo: install
	cd example_project && ../$(BIN)/python manage.py migrate --noinput --verbosity 0
	cd example_project && ../$(BIN)/python manage.py demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy billflow_usage

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-* example_project/*.sqlite3 .pytest_cache .mypy_cache .ruff_cache
