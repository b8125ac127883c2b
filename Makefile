# LEARNAE edge: `make demo` runs the system on this machine, `make test` checks it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: setup demo test lint mosquitto kubo browser test-deps bench clean evm-rig iota-ts stubs

setup: $(INSTALLED) mosquitto

# Re-install only when the project's metadata changes. Debian's python3 lacks
# ensurepip until python3-venv is installed (a failed run leaves a venv without
# pip, so the venv is made again while pip is missing).
$(INSTALLED): pyproject.toml
	$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv $(VENV) \
		|| { tools/apt-install.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q -e '.[dev,tflite,ledger]'
	touch $@

mosquitto:
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || tools/apt-install.sh mosquitto

# The test suite also drives headless Chromium and checks the systemd unit with
# systemd-analyze (package systemd); one apt run installs them all.
browser:
	@tools/apt-install.sh mosquitto chromium systemd

# kubo built from its Go module into .cache/kubo/bin (reused when already built).
kubo:
	@bash tools/kubo/install.sh

# solc and anvil from npm (pinned by tools/evm/package-lock.json) into .cache/evm.
evm-rig:
	@bash tools/evm/install.sh

# npm @iota/iota-sdk@1.15.1 (pinned by tools/iota/package-lock.json) into .cache/iota-ts:
# the TypeScript SDK that the layer-1 adapter's golden tests compare against under Node 20.
iota-ts:
	@bash tools/iota/install.sh

# Python packages, Debian packages, kubo and the EVM and IOTA rigs build side by side.
test-deps:
	@$(MAKE) --no-print-directory -j6 $(INSTALLED) browser kubo evm-rig iota-ts stubs

demo: setup
	$(PY) -m gateway demo --duration $${DURATION:-60}

test: test-deps
	$(PY) -m pytest

# The `bench` extra (PyTorch, a large download) is for `bench train`'s comparison only.
bench: $(INSTALLED)
	$(PY) -m pip install -q -e '.[dev,tflite,ledger,bench]'

lint: $(INSTALLED) stubs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict --follow-imports=silent gateway/store gateway/peer gateway/learning
	for b in $(BOARDS); do \
		LEARNAE_STUBS=$(STUBS)/$$b $(VENV)/bin/mypy --config-file edge_firmware/mypy.ini || exit 1; \
	done

# Each board's MicroPython stubs (with the stdlib stubs they need) in a directory
# of its own: installed side by side, one board's machine.pyi would replace the
# other's. `make lint` checks the firmware once per board (edge_firmware/mypy.ini).
BOARDS := rp2 esp32
STUBS := .cache/stubs
stubs: $(BOARDS:%=$(STUBS)/%/.installed)

$(STUBS)/%/.installed: | $(INSTALLED)
	rm -rf $(STUBS)/$*
	$(PY) -m pip install -q --target $(STUBS)/$* 'micropython-$*-stubs~=1.24'
	touch $@

clean:
	rm -rf $(VENV) .cache .pytest_cache build *.egg-info
