# probe: make demo | make test | make bench | make reproduce
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROBE := $(BIN)/probe
RUNS := runs
# The shipped models, and the training steps each got (see its card in checkpoints/).
SHIPPED := stdlib-lstm warpeace-lstm linux-lstm linux-gru linux-rnn
STEPS_stdlib-lstm ?= 3600
STEPS_warpeace-lstm ?= 3800
STEPS_linux-lstm ?= 3400
STEPS_linux-gru ?= 2600
STEPS_linux-rnn ?= 3400

.PHONY: demo test lint bench reproduce reproduce-train reproduce-report browser clean $(addprefix train-,$(SHIPPED))

$(BIN)/probe: pyproject.toml setup.py probe/_kernels.c probe/_auroc_kernels.c probe/_recorder_kernels.c probe/_kernels.h
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0   # first: the CPU wheel, so nothing pulls a CUDA build
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Record held-out stdlib text with the shipped default model and open the dashboard.
demo: $(BIN)/probe
	$(PROBE) demo

# Headless Chromium, poppler and a minimal TeX for the browser and export tests (Debian).
browser:
	@command -v chromium >/dev/null && command -v pdftoppm >/dev/null && command -v pdflatex >/dev/null || \
	  (apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver \
	   poppler-utils texlive-latex-base texlive-latex-recommended) >/dev/null

test: $(BIN)/probe browser
	$(BIN)/ruff check probe dashboards tests bench
	$(BIN)/python -m pytest tests

lint: $(BIN)/probe
	$(BIN)/ruff format probe dashboards tests bench
	$(BIN)/ruff check --fix probe dashboards tests bench

# Full size, two interleaved rounds: 11-17.5 minutes on 2 Zen 1 cores (the longer on days when
# the machine has less memory bandwidth).
# `make bench BENCH_ARGS="--scale 0.3"` for a quicker, less exact run.
BENCH_ARGS ?= --rounds 2
bench: $(BIN)/probe browser
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Train every shipped model (about 90 min on 2 cores), then rebuild report and cards.
reproduce:
	$(MAKE) -j2 reproduce-train
	$(MAKE) reproduce-report

# Each shipped model trains for a fixed number of steps (batch 64 x 100 chars), so a rerun
# gives the same weights whatever else the machine is doing; a stopped run resumes exactly.
# One thread per run: runs side by side (`make -j2 reproduce-train`) share 2 cores well
# (OpenMP threads spin badly when oversubscribed).
train = OMP_NUM_THREADS=1 $(PROBE) train --out $(RUNS)/$(1) $(3) --max-steps $(2) $$(test -d $(RUNS)/$(1)/last && echo --resume)

reproduce-train: $(addprefix train-,$(SHIPPED))

train-stdlib-lstm: $(BIN)/probe
	$(call train,stdlib-lstm,$(STEPS_stdlib-lstm),--corpus stdlib --cell lstm --layers 2 --hidden 128 --dropout 0.1)
train-warpeace-lstm: $(BIN)/probe
	$(call train,warpeace-lstm,$(STEPS_warpeace-lstm),--corpus warpeace --split 80/10/10 --cell lstm --layers 2 --hidden 128 --dropout 0.1)
train-linux-lstm: $(BIN)/probe
	$(call train,linux-lstm,$(STEPS_linux-lstm),--corpus linux --cell lstm --layers 2 --hidden 128 --dropout 0.1 --snapshot-every 500)
train-linux-gru: $(BIN)/probe
	$(call train,linux-gru,$(STEPS_linux-gru),--corpus linux --cell gru --layers 2 --hidden 149 --dropout 0.1)
train-linux-rnn: $(BIN)/probe
	$(call train,linux-rnn,$(STEPS_linux-rnn),--corpus linux --cell rnn --layers 2 --hidden 264 --dropout 0.1 --lr 1e-3 --snapshot-every 500)

reproduce-report: $(BIN)/probe
	test ! -d $(RUNS) || $(BIN)/python -m probe.report ship --runs $(RUNS) --checkpoints checkpoints
	$(BIN)/python -m probe.report report --checkpoints checkpoints --out docs/reproduction.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
