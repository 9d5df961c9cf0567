# The two commands a new user needs: `make run` and `make test`. Everything else they call.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: run test tools model package dev bench soak clean contract

# The virtual environment, installed from the pinned constraints (what the tests ran is what deploys).
$(READY): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# The Terraform schema check's plugin-protocol package: its metadata caps protobuf below what
	# google-cloud needs, yet it runs on the newer one, so it is installed without its dependencies.
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt tf
	touch $@

model: $(READY)
	$(BIN)/closet-pipeline fetch-model

run: model
	$(BIN)/closet-pipeline process examples/*.jpg --out out

# What the tests need beyond Python packages: Debian's chromium for the browser tests (no test tool
# can download a browser here). Java, google-cloud-cli's Pub/Sub emulator and Terraform are checked
# by the tests themselves, which fail with a one-line reason when one is missing.
tools:
	@if [ ! -x /usr/bin/chromium ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "make tools: installing Debian's chromium for the browser tests"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# pytest exits 5 when it collects nothing: say so instead of passing silently or failing obscurely.
# The Terraform check plans against the zips `make package` builds: no placeholders.
test: model tools package
	$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests"; fi; exit $$status

# contract/ from the pydantic models: JSON Schemas and the OpenAPI document (a test fails when stale).
# `closet-pipeline contract --record-examples` also re-records contract/examples/ from a topology run.
contract: $(READY)
	$(BIN)/closet-pipeline contract

# The production topology on this machine: emulators and one functions-framework server per function.
dev: model
	$(BIN)/closet-pipeline dev

# Function zips from git's tree (commit first): closet_pipeline/packaging.py. --sizes installs each
# zip's requirements (uv, cached) and prints the size table README quotes.
package: model
	$(BIN)/python -m closet_pipeline.packaging --out build/functions --sizes

clean:
	rm -rf out build .pytest_cache

# Retrain both garment models from ../shared (datasets and pretrained weights) with fixed seeds, rewrite
# their ONNX files and pins, measure the parser options, sweep the rules on the validation parts and
# regenerate MODELS.md. Checkpoints after every epoch in ~/.cache/closet-pipeline/training (or
# $CLOSET_TRAINING_DIR): run it again after an interruption and it resumes. A GPU is used when present.
.PHONY: models
models: model
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[train]'
	$(BIN)/python -m closet_pipeline.train.train_classifier
	$(BIN)/python -m closet_pipeline.train.train_parser
	$(BIN)/python -m closet_pipeline.train.cutouts --part validation --part test --part train
	$(BIN)/python -m closet_pipeline.train.isnet_head
	$(BIN)/python -m closet_pipeline.train.thresholds
	$(BIN)/python -m closet_pipeline.train.evaluate --out MODELS.md

bench: model
	$(BIN)/python -m closet_pipeline.bench.run --out BENCHMARKS.md

# 60 uploads within a minute through the strict emulator topology, every message twice (RELIABILITY.md).
soak: model
	$(BIN)/python -m closet_pipeline.dev.soak --count 60 --over 60 --fresh 4 --distinct 2 --many 1 --timeout 900
