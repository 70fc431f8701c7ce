# make install: .venv with gencli, the right torch and the embedded model.
# make test:    the whole suite, offline.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.gencli-installed

.PHONY: install test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh
	@touch $@

test: install
	$(VENV)/bin/python -m pytest -q

bench: install
	$(VENV)/bin/python benchmarks/bench_help.py
	$(VENV)/bin/python benchmarks/bench_text.py
	$(VENV)/bin/python benchmarks/bench_batch.py
	@if [ -n "$$LLAMA_PYTHON" ]; then $(VENV)/bin/python benchmarks/bench_llamacpp.py; \
	else echo "bench_llamacpp.py skipped: set LLAMA_PYTHON to a python with llama-cpp-python (benchmarks/README.md)"; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
