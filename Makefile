# Two entry points; each sets up .venv on first use (needs only python3).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench clean

$(STAMP): setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned to its CPU build: setup.cfg only asks for torch>=2.1,
	# and an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install --quiet -e ".[test,plots,serve,annotate,onnx]" build wheel
	# the demo-page test drives Debian's chromium through playwright (which downloads no browser)
	test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
		else echo "chromium is missing: as root run apt-get update && apt-get install -y chromium"; fi; }
	touch $(STAMP)

## run: the main job - `spacy project run all` on the embedded store-lookup data
run: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m spacy project run all

## test: the test suite (what CI runs): the unit tier and the tier that trains the tiny BERT
test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q tests

## test-fast: the unit tier only (tests/unit: hand-made score arrays, no training; seconds)
test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q tests/unit

clean:
	rm -rf $(VENV) corpus training metrics packages assets/store_lookup assets/store_lookup_hard assets/atis assets/snips
