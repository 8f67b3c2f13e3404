# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv if needed.
#
# Python 3.11, 3.12 or 3.13. A new .venv is made with PYTHON when given (`make test PYTHON=python3.12`,
# `PYTHON=/usr/bin/python3.13 make demo`), else with the newest of python3.13, python3.12, python3.11,
# python3 that actually runs and is 3.11 to 3.13 (a pyenv shim for a version that is not selected is found
# by `command -v` but does not run). An existing .venv is kept as it is; asking for another Python than
# the one it was made with stops with the two ways to switch.
SUPPORTED := 3.11 3.12 3.13
CANDIDATES := python3.13 python3.12 python3.11 python3
VERSION_OF := import sys; print("%d.%d" % sys.version_info[:2])
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(CANDIDATES); do $$p -c 'import sys; v = sys.version_info[:2]; \
  assert (3, 11) <= v <= (3, 13) and sys.executable; print(sys.executable)' 2>/dev/null && break; done)
else
PYTHON_GIVEN := yes
endif
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENV_ARG := $(if $(filter-out .venv,$(VENV)), VENV=$(VENV))
PY_VERSION := $(if $(PYTHON),$(shell $(PYTHON) -c '$(VERSION_OF)' 2>/dev/null))
# The .venv's own Python: empty when there is no .venv, "broken" when its interpreter no longer runs.
VENV_VERSION := $(shell test -e $(VENV)/pyvenv.cfg && { $(BIN)/python -c '$(VERSION_OF)' 2>/dev/null || echo broken; })

.PHONY: demo test lint install clean help check-python check-pythons wheelhouse install-offline

help:
	@echo "make demo   set up .venv and run the pipeline on the sample media"
	@echo "make test   set up .venv, fetch the models and test media, install Chromium if missing, run lint + pytest"
	@echo "make clean  remove .venv and the demo workspace (the asset cache is kept)"
	@echo "make wheelhouse [PY=3.12]  wheels of every pinned dependency (torch left out) + the asset cache in dist/offline"
	@echo "make install-offline [OFFLINE=dist/offline]  on an air-gapped node: install from that folder only, keep its torch"
	@echo "make check-pythons  install and smoke-test facewright in a fresh venv per Python 3.11/3.12/3.13 found"
	@echo "                    (scripts/check-pythons.sh; CHECK_PYTHONS='/path/to/python3.12 ...' picks them)"
	@echo "PYTHON=python3.12 make test   the Python of a new .venv: 3.11, 3.12 or 3.13 (default: the newest that runs)"
	@echo "  now: PYTHON=$(or $(PYTHON),none found)$(if $(PYTHON), ($(or $(PY_VERSION),does not run)))," \
	  "$(VENV): $(if $(VENV_VERSION),Python $(VENV_VERSION),not made yet)"

# Which Python: checked on every run (cheap) before .venv is made or used.
check-python:
ifeq ($(VENV_VERSION),broken)
	@echo "facewright: $(VENV) was made with a Python that no longer runs" \
	  "($$(sed -n 's/^executable = //p' $(VENV)/pyvenv.cfg))."; \
	 echo "  fix: rm -rf $(VENV), then this command again (it rebuilds $(VENV) with $(or $(PYTHON),a Python 3.11-3.13))"; \
	 exit 1
endif
ifneq ($(VENV_VERSION),)
ifdef PYTHON_GIVEN
ifneq ($(PY_VERSION),$(VENV_VERSION))
	@echo "facewright: $(VENV) is Python $(VENV_VERSION), but PYTHON=$(PYTHON) is" \
	  "$(or $(PY_VERSION),not a Python that runs here)."; \
	 echo "  fix: rebuild it: rm -rf $(VENV) && make $(or $(MAKECMDGOALS),test) PYTHON=$(PYTHON)$(VENV_ARG)"; \
	 echo "    or keep both: make $(or $(MAKECMDGOALS),test) PYTHON=$(PYTHON) VENV=.venv-$(or $(PY_VERSION),X.Y)"; \
	 exit 1
endif
endif
else
	@test -n "$(PYTHON)" || { \
	  echo "facewright needs Python 3.11, 3.12 or 3.13: none of $(CANDIDATES) is one that runs" \
	    "(python3 is $$(python3 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo missing))."; \
	  echo "  fix: install one (Debian/Ubuntu: apt-get install python3.11 python3.11-venv), or name it:" \
	    "make $(or $(MAKECMDGOALS),test) PYTHON=/path/to/python3.12"; exit 1; }
	@case " $(SUPPORTED) " in *" $(PY_VERSION) "*) ;; *) \
	  echo "facewright needs Python 3.11, 3.12 or 3.13: PYTHON=$(PYTHON) is" \
	    "$$($(PYTHON) -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo 'not one that runs here')."; \
	  echo "  fix: name one that runs, e.g. make $(or $(MAKECMDGOALS),test) PYTHON=/usr/bin/python3.11" \
	    "(3.11, 3.12 or 3.13), or leave PYTHON unset to take the newest found"; \
	  exit 1;; esac
endif

# Debian ships python3.X without venv/ensurepip: install python3.X-venv (or python3-venv) when the first try fails.
$(BIN)/python: | check-python
	@echo "creating $(VENV) with Python $(PY_VERSION) ($(PYTHON))"
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "venv failed: installing python$(PY_VERSION)-venv with apt-get"; \
	  apt-get update -qq && { apt-get install -y -qq python$(PY_VERSION)-venv || apt-get install -y -qq python3-venv; } \
	  && $(PYTHON) -m venv $(VENV); }

$(STAMP): pyproject.toml | check-python $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/facewright demo

lint: $(STAMP)
	$(BIN)/ruff check facewright tests scripts

# Two test processes (pytest-xdist), each one core's worth of threads (tests/conftest.py): on 2 cores the suite
# took 17-19 minutes where one process took 32 (2026-12-04). TEST_WORKERS=0 runs it in this process alone.
TEST_WORKERS ?= 2
test: $(STAMP) lint
	$(BIN)/facewright assets fetch
	PYTHON=$(BIN)/python scripts/install-chromium.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Not part of `make test`: for 3.12/3.13 this machine has no local CPU torch, so pip downloads PyPI's CUDA build.
check-pythons:
	scripts/check-pythons.sh $(CHECK_PYTHONS)

# An air-gapped GPU node: build the folder here (PY: the node's Python), copy it over, install from it alone.
PY ?= $(PY_VERSION)
OFFLINE ?= dist/offline
wheelhouse: $(STAMP)
	$(BIN)/facewright assets fetch
	$(BIN)/python scripts/wheelhouse.py --python-version $(PY) --out $(OFFLINE)

# NODE_PYTHON: the node's own Python, with its CUDA torch; --system-site-packages keeps that torch, --no-deps
# keeps pip from asking for facewright's pinned torch, --no-index keeps it off the network.
NODE_PYTHON ?= python3
install-offline:
	@test -d $(OFFLINE)/wheels || { echo "no $(OFFLINE)/wheels: run make wheelhouse PY=X.Y where there is a network"; exit 1; }
	$(NODE_PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --no-index --no-deps $(OFFLINE)/wheels/*.whl
	mkdir -p $${FACEWRIGHT_HOME:-$$HOME/.cache/facewright}/assets
	cp -rn $(OFFLINE)/assets/. $${FACEWRIGHT_HOME:-$$HOME/.cache/facewright}/assets/
	$(BIN)/python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
	$(BIN)/facewright assets fetch

clean:
	rm -rf $(VENV) facewright-workspace
