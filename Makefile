# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: run production test lint format install js migrate browser bench clean

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

# The demo shop (/demo/) is on for `make run`: it is how a newcomer sees the product work.
run: export REPLAY_DEMO ?= 1
run: install js migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py first_run
	$(PY) -m replay.serve -b $(HOST) -p $(PORT)

# Several server processes and workers, as in production (README, "Production"): needs
# DATABASE_URL (PostgreSQL), REDIS_URL, SECRET_KEY and ALLOWED_HOSTS in the environment.
production: export REPLAY_PRODUCTION ?= 1
production: export REPLAY_EMBEDDED_WORKER = 0
production: install js
	$(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(VENV)/bin/honcho start -f Procfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Browser tests drive Debian's chromium; install it when we can, else they are skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: browser tests will be skipped (install Debian's chromium)"; fi; }

test: install js lint browser
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install js
	$(PY) bench/ingest_throughput.py
	$(PY) bench/storage.py
	$(PY) bench/replay_load.py

clean:
	rm -rf $(VENV) node_modules static/dist demo/static/demo/dist var
