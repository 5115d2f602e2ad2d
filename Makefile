# Two commands for people:   make lab    (install, then start the lab with JupyterLab)
#                            make test   (install test tools, then run every test)
# Everything goes into .venv/ in this folder; nothing is installed system-wide by `make lab`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: lab serve test clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); run: make PYTHON=/path/to/python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.lab-installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

lab: $(VENV)/.lab-installed
	$(BIN)/python -m tutorial_server lab

serve: $(VENV)/.lab-installed
	$(BIN)/python -m tutorial_server serve

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
