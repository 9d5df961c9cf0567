# The two commands a new user needs: `make run` and `make test`. Everything else they call.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: run test model package dev bench soak clean

# The virtual environment, installed from the pinned constraints (what the tests ran is what deploys).
$(READY): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

model: $(READY)
	$(BIN)/closet-pipeline fetch-model

run: model
	$(BIN)/closet-pipeline process examples/*.jpg --out out

# pytest exits 5 when it collects nothing: say so instead of passing silently or failing obscurely.
test: model
	$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests"; fi; exit $$status

# The production topology on this machine: emulators and one functions-framework server per function.
dev: model
	$(BIN)/closet-pipeline dev

package: model
	$(BIN)/python -m shared.packaging --out build/functions

clean:
	rm -rf out build .pytest_cache

bench: model
	$(BIN)/python -m shared.bench --out BENCHMARKS.md

# 200 uploads within a minute through the emulator topology (RELIABILITY.md).
soak: model
	$(BIN)/python -m shared.soak --count 200 --over 60 --fresh 10 --timeout 900
