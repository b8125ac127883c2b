# LEARNAE edge: `make demo` runs the system on this machine, `make test` checks it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: setup demo test lint mosquitto ipfs-rig browser test-deps clean

setup: $(INSTALLED) mosquitto

# Re-install only when the project's metadata changes. Debian's python3 lacks
# ensurepip until python3-venv is installed (a failed run leaves a venv without
# pip, so the venv is made again while pip is missing).
$(INSTALLED): pyproject.toml
	$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv $(VENV) \
		|| { tools/apt-install.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q -e '.[dev,tflite]'
	touch $@

mosquitto:
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || tools/apt-install.sh mosquitto

# The test suite also drives headless Chromium and checks the systemd unit with
# systemd-analyze (package systemd); one apt run installs them all.
browser:
	@tools/apt-install.sh mosquitto chromium systemd

ipfs-rig:
	@bash tools/ipfs-rig/install.sh

# Python packages, Debian packages and the js-ipfs rig install side by side.
test-deps:
	@$(MAKE) --no-print-directory -j3 $(INSTALLED) browser ipfs-rig

demo: setup
	$(PY) -m gateway demo --duration $${DURATION:-60}

test: test-deps
	$(PY) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file edge_firmware/mypy.ini

clean:
	rm -rf $(VENV) .cache .pytest_cache build *.egg-info
