# make install:   .venv with gencli, the right torch and the embedded model.
# make test:      lint, typecheck, then the whole suite, offline; fails on any of them.
# make test-fast: the suite less the tests marked slow (processes, the embedded model).
# make lint / fix / typecheck: ruff and mypy, configured in pyproject.toml.
# make mutation: mutmut over the core modules against their fast tests, prints the score
#                (MODULES="extract writers" for some; installs mutmut into the venv on first use).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.gencli-installed
LINTED := gencli tests benchmarks scripts

.PHONY: install lint fix typecheck test-fast test bench mutation clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh
	@touch $@

lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

fix: install
	$(VENV)/bin/ruff check --fix $(LINTED)
	$(VENV)/bin/ruff format $(LINTED)

typecheck: install
	$(VENV)/bin/mypy

test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not slow"

test: lint typecheck
	$(VENV)/bin/python -m pytest -q

bench: install
	$(VENV)/bin/python benchmarks/bench_help.py
	$(VENV)/bin/python benchmarks/bench_text.py
	$(VENV)/bin/python benchmarks/bench_batch.py
	@if [ -n "$$LLAMA_PYTHON" ]; then $(VENV)/bin/python benchmarks/bench_llamacpp.py; \
	else echo "bench_llamacpp.py skipped: set LLAMA_PYTHON to a python with llama-cpp-python (benchmarks/README.md)"; fi

MUTMUT ?= mutmut==3.8.1
MODULES ?=

mutation: install
	@$(VENV)/bin/python -c "import mutmut" 2>/dev/null || $(VENV)/bin/pip install -q "$(MUTMUT)"
	nice -n 19 $(VENV)/bin/python scripts/mutation.py $(MODULES)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
