# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: run test lint format install js migrate bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

js: node_modules/.installed
	npm run --silent build

migrate: install
	$(PY) manage.py migrate --noinput

run: install js migrate
	$(PY) manage.py first_run
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) replay.asgi:application

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install js lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install js
	$(PY) bench/ingest_throughput.py
	$(PY) bench/storage.py

clean:
	rm -rf $(VENV) node_modules static/dist var
