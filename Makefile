# The README's two commands: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench golden

## Install digest and run the weekly job on the bundled sample: build, then send to the
## sample subscribers through the outbox transport (.eml files in outbox/; no server).
demo: $(VENV)/.installed
	$(BIN)/digest --config config.example.toml build --latest
	$(BIN)/digest --config config.example.toml send --latest --yes

## Install what the tests need (Python test extra; Debian's chromium for the browser
## tests) and run them all.
test: $(VENV)/.installed-test /usr/bin/chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## Regenerate the golden files after an intended change to templates or sample content.
golden: $(VENV)/.installed-test
	DIGEST_REGEN_GOLDEN=1 $(BIN)/python -m pytest tests/test_render.py tests/test_export.py

bench: $(VENV)/.installed-test
	$(BIN)/python bench/build.py
	$(BIN)/python bench/send.py
	$(BIN)/python bench/suppression.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

/usr/bin/chromium:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium
