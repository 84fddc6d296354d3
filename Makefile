# probe: make demo | make test | make bench | make reproduce
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROBE := $(BIN)/probe
RUNS := runs
# Training minutes per shipped model are given below (2 CPU cores); a stopped run resumes.

.PHONY: demo test lint bench reproduce reproduce-train reproduce-report browser clean

$(BIN)/probe: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0   # first: the CPU wheel, so nothing pulls a CUDA build
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Record held-out stdlib text with the shipped default model and open the dashboard.
demo: $(BIN)/probe
	$(PROBE) demo

# Headless Chromium and poppler for the browser and export tests (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v pdftoppm >/dev/null || \
	  (apt-get update -q && apt-get install -y -q chromium chromium-driver poppler-utils) >/dev/null

test: $(BIN)/probe browser
	$(BIN)/ruff check probe dashboards tests bench
	$(BIN)/python -m pytest tests

lint: $(BIN)/probe
	$(BIN)/ruff format probe dashboards tests bench
	$(BIN)/ruff check --fix probe dashboards tests bench

bench: $(BIN)/probe browser
	$(BIN)/python -m bench.run

# Train every shipped model (about 90 min on 2 cores), then rebuild report and cards.
reproduce: reproduce-train reproduce-report

define train
	$(PROBE) train --out $(RUNS)/$(1) $(3) --max-minutes $(2) $$(test -d $(RUNS)/$(1)/last && echo --resume)
endef

reproduce-train: $(BIN)/probe
	$(call train,stdlib-lstm,15,--corpus stdlib --cell lstm --layers 2 --hidden 256 --dropout 0.1)
	$(call train,warpeace-lstm,25,--corpus warpeace --split 80/10/10 --cell lstm --layers 2 --hidden 256 --dropout 0.1)
	$(call train,linux-lstm,25,--corpus linux --cell lstm --layers 2 --hidden 256 --dropout 0.1 --snapshot-every 1000)
	$(call train,linux-gru,10,--corpus linux --cell gru --layers 2 --hidden 298 --dropout 0.1)
	$(call train,linux-rnn,10,--corpus linux --cell rnn --layers 2 --hidden 522 --dropout 0.1 --lr 1e-3 --snapshot-every 1000)

reproduce-report: $(BIN)/probe
	$(BIN)/python -m probe.report --runs $(RUNS) --checkpoints checkpoints --out docs/reproduction.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
