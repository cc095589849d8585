# The targets are the commands the README names. Each one sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := src/userdesk/web/static/vendor
PORT ?= 8000
DEMO_USERS ?= 2000

.PHONY: setup run test test-fast bench load lint format clean

setup: $(VENV)/.installed $(VENDOR)/.copied

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The tests also need the eval extra (the CDNOW data file); `make run` stays light.
$(VENV)/.installed-eval: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,eval]'
	touch $@

# The bench also needs the bench extra (Django, for the admin changelist side-by-side).
$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

$(VENDOR)/.copied: node_modules/.package-lock.json
	mkdir -p $(VENDOR)
	cp node_modules/@tabler/core/dist/css/tabler.min.css $(VENDOR)/
	cp node_modules/@tabler/core/dist/js/tabler.min.js $(VENDOR)/
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js $(VENDOR)/
	cp node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/
	touch $@

run: setup
	$(BIN)/userdesk serve --port $(PORT) --demo-users $(DEMO_USERS)

test: setup $(VENV)/.installed-eval
	scripts/ensure-chromium
	scripts/test

# The suite without the browser and without PostgreSQL: SQLite alone, tests/browser left out.
test-fast: setup $(VENV)/.installed-eval
	USERDESK_TEST_BACKEND=sqlite $(BIN)/pytest --ignore=tests/browser

bench: setup $(VENV)/.installed-bench
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null 2>&1; } \
		|| echo "wrk is not installed: throughput is measured with an httpx client instead"
	$(BIN)/python -m bench

# `make load` also needs the load extra (Locust).
$(VENV)/.installed-load: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,load]'
	touch $@

# A mixed workload on PostgreSQL at 1 M users for 60 s (load/run.py; long: not in `make test`).
load: setup $(VENV)/.installed-load
	$(BIN)/python -m load.run

lint: setup
	$(BIN)/ruff check src tests bench load
	$(BIN)/ruff format --check src tests bench load
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests bench load
	$(BIN)/ruff check --fix src tests bench load

clean:
	rm -rf $(VENV) node_modules $(VENDOR) var
