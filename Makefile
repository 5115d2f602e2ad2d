# Two commands for people:   make lab    (install, then start the lab with JupyterLab)
#                            make test   (install test tools, then run every test)
# Everything goes into .venv/ in this folder; nothing is installed system-wide by `make lab`.
# Python: the course supports 3.10 to 3.13 (pyproject.toml's classifiers). make picks python3.11
# (the version the notebooks' stored outputs are made on, and CI's whole suite runs on), else the
# newest supported Python found (python3.X on the PATH, or pyenv's), else python3; it says which
# one it uses, and what to install if none fits (tools/pythons.py). Another one:
# make PYTHON=/path/to/python3.12 lab   (after rm -rf .venv if .venv was made with another)
ifndef PYTHON
PYTHON := $(shell python3 tools/pythons.py pick 2>/dev/null || command -v python3)
endif
VENV   := .venv
BIN    := $(VENV)/bin
# The browser the tests drive (Debian's chromium by default; any Chrome or Chromium works).
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

.PHONY: lab serve test clean chromium

$(BIN)/python:
	@[ -n "$(PYTHON)" ] || { echo "No Python found: the course needs Python 3.10 to 3.13 (python.org, or your package manager)."; exit 1; }
	@$(PYTHON) tools/pythons.py check
	@$(PYTHON) -c 'import sys; print("Using Python", sys.version.split()[0], "at", sys.executable)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@# JupyterLab's news prompt off: a plain install ships this file (pyproject data-files), an
	@# editable one does not.
	install -D -m 644 jupyterlab-settings/stripe-payments-lab.json \
	  $(VENV)/share/jupyter/lab/settings/overrides.d/stripe-payments-lab.json
	@touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.lab-installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

lab: $(VENV)/.lab-installed
	@# The React shop needs Node.js; without it everything else still works.
	@if command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory client || echo "The React shop (/shop/) did not build (Node.js 20.19+ needed); the lab starts without it."; \
	else echo "The React shop at /shop/ needs Node.js 20.19+ and npm: install them, then run make client."; fi
	$(BIN)/python -m tutorial_server.lab lab --no-shop-build

serve: $(VENV)/.lab-installed
	$(BIN)/python -m tutorial_server.lab serve

# Tests run in TEST_WORKERS processes (pytest-xdist), whole files each. Most tests wait on labs,
# kernels and browsers: on 2 cores 4 workers took about 3.5 minutes, 2 or 3 about 4.5 (one
# process: 10); TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 4
# OTHER_PYTHONS: the other Pythons the tests run the fast tier and strict nbval of the notebooks
# on (tests/test_python_versions.py), each from .venv-3.X/ (the package and its test tools). By
# default the oldest and the newest supported Python found besides .venv's own; the test sets
# them up itself while the other tests run (about a minute each), so they cost little time.
# OTHER_PYTHONS="3.10 3.12 3.13" picks them yourself; OTHER_PYTHONS= none (they are then skipped,
# with the reason). `make other-pythons` sets them up without testing.
OTHER_PYTHONS ?= auto
OTHER_PYTHONS_FOUND = $(if $(filter auto,$(OTHER_PYTHONS)),$$($(BIN)/python tools/pythons.py others),$(OTHER_PYTHONS))
test: $(VENV)/.test-installed node_modules/.installed chromium client client-check book
	TEST_OTHER_PYTHONS="$(OTHER_PYTHONS_FOUND)" $(BIN)/python -m pytest -n $(TEST_WORKERS)

.PHONY: other-pythons
other-pythons: $(VENV)/.lab-installed
	$(BIN)/python tools/pythons.py setup $(OTHER_PYTHONS_FOUND)

# The fast tier alone (tests/fast/): the app in this process against one shared offline Stripe;
# no lab process, browser, notebook or newman. Well under a minute; `make test` runs it too.
.PHONY: test-fast mutation
test-fast: $(VENV)/.test-installed
	$(BIN)/python -m pytest -p no:cacheprovider -o addopts='-ra --strict-markers' tests/fast

# Mutation testing (cosmic-ray, tools/mutation/): the modules in tools/mutation/cosmic-ray.toml
# against the fast tier, side by side; one line per module, `<module>: <score>% (<killed>/<run>)`.
# checkout_sessions.py is the longest: about 40 minutes (about 220 mutants, 11 s each).
mutation: $(VENV)/.test-installed
	$(BIN)/python tools/mutation/run.py

# newman (the Postman runner), pinned in package.json + package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The React shop (client/, served at /shop/), built from source: Node.js 20.19+ and npm,
# versions pinned in client/package-lock.json. `client-check` type-checks it (tsc --noEmit).
.PHONY: client client-check
CLIENT_SOURCES := $(wildcard client/src/*) client/index.html client/vite.config.ts client/tsconfig.json
client: client/dist/index.html client/dist/vendor/mermaid.min.js

client/node_modules/.installed: client/package.json client/package-lock.json
	cd client && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

client/dist/index.html: client/node_modules/.installed $(CLIENT_SOURCES)
	cd client && npm run --silent build -- --logLevel warn

# The Mermaid library (pinned in client/package.json), beside the shop's build: the dashboard draws
# each order's trace with it, offline (tutorial_server/lab/dashboard.py serves it). After the build,
# which empties client/dist/.
client/dist/vendor/mermaid.min.js: client/dist/index.html client/node_modules/.installed
	install -D -m 644 client/node_modules/mermaid/dist/mermaid.min.js $@

client-check: client/node_modules/.installed
	cd client && npm run --silent typecheck

# The course as a book (book/): notebooks 00-08 with their stored outputs, then the guides, as
# static HTML in build/book/ (open build/book/index.html), built with no network access.
# Jupyter Book 2 (pinned in pyproject's [book] extra) needs Node.js; the diagrams need `make client`.
# `make book-key`: the instructor's private book, solutions in place, in build/book-key/.
# book/launch.ini: the class hub and repository the "Run this chapter" boxes link to.
.PHONY: book book-key
$(VENV)/.book-installed: pyproject.toml $(VENV)/.lab-installed
	$(BIN)/python -m pip install --quiet -e ".[book]"
	@touch $@

book: $(VENV)/.book-installed client
	$(BIN)/python book/build.py

book-key: $(VENV)/.book-installed client
	$(BIN)/python book/build.py --key

# Browser tests drive Debian's chromium through Playwright (never `playwright install`).
chromium:
	@[ -x "$(CHROMIUM)" ] || command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Chromium: sudo apt-get install chromium, or run make test CHROMIUM=/path/to/chrome"; exit 1; fi; }

# Benchmarks (bench/): prints numbers, passes or fails nothing; run it on a quiet machine.
# BENCH_ARGS=--quick gives small numbers, just to check the scripts run.
.PHONY: bench
bench: $(VENV)/.test-installed
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache node_modules client/node_modules client/dist
