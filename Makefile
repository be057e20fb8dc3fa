# `make run` serves the demo on http://127.0.0.1:5000; `make test` runs the whole suite;
# `make bench` measures the product against its baselines and writes docs/benchmarks.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app

.PHONY: run serve test install chromium bench loadtest clean dev-sinks
WORKERS ?= 4
BIND ?= 127.0.0.1:8000

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed

# Development mode: generates development keys into instance/dev-keys.json on first use.
run: export TENANT_CONFIG_ENV = development
run: install
	$(FLASK) db upgrade
	@if $(FLASK) tenants list | grep -q '^0 tenant'; then $(FLASK) demo; fi
	$(FLASK) run --host 127.0.0.1 --port 5000

# Production serving: needs CONFIG_ENCRYPTION_KEY, SECRET_KEY and DATABASE_URL in the environment.
serve: install
	$(FLASK) db upgrade
	$(BIN)/gunicorn --workers $(WORKERS) --bind $(BIND) --access-logfile - 'app:app'

# Local stand-ins for SMTP, Slack and Stripe on 127.0.0.1 (SMTP 2525, HTTP 8090); see the README.
dev-sinks: export TENANT_CONFIG_ENV = development
dev-sinks: install
	$(FLASK) dev-sinks

test: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser tests drive Debian's chromium package through Playwright, which never downloads a browser of its own.
# Installing it needs root and apt-get. Without them, or when the install fails, tests/test_browser.py skips and says why.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium package for the browser tests."; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null \
	      || echo "Installing chromium failed; the browser tests will be skipped."; \
	  else \
	    echo "$(CHROMIUM) is missing and apt-get cannot run as root here; the browser tests will be skipped."; \
	  fi; \
	fi

$(BIN)/.bench-installed: $(BIN)/.installed requirements-bench.txt
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

# Not part of `make test`: takes about 6 minutes on 2 cores, and needs PostgreSQL on 127.0.0.1:5432 for its PostgreSQL lines.
# Pass options with `make bench BENCH_ARGS="--parts warm,bulk"`; see `python -m bench --help`.
bench: $(BIN)/.bench-installed
	$(BIN)/python -m bench $(BENCH_ARGS)

# Not part of `make test`: logins, settings pages and saves against gunicorn with PostgreSQL for 30 s;
# exits 1 on any error. Options: `make loadtest LOADTEST_ARGS="--seconds 60 --clients 32 --database sqlite"`.
loadtest: install
	$(BIN)/python -m bench.loadtest $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
