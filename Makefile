# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv if needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean help

help:
	@echo "make demo   set up .venv and run the pipeline on the sample media"
	@echo "make test   set up .venv, fetch the models and test media, run lint + pytest"
	@echo "make clean  remove .venv and the demo workspace (the asset cache is kept)"

# Debian's python3.11 ships without venv/ensurepip: install python3-venv when the first try fails.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "facewright needs Python 3.11, got " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "venv failed: installing python3-venv with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/facewright demo

lint: $(STAMP)
	$(BIN)/ruff check facewright tests

test: $(STAMP) lint
	$(BIN)/facewright assets fetch
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) facewright-workspace
