# The two commands a newcomer runs: `make book` and `make test`. Both set up .venv first.
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
PROFILE ?= course
export LOTTERY_CACHE_DIR ?= $(CURDIR)/.cache
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: venv assets book test bench clean

venv: $(VENV)/.installed

# torch is installed first and pinned: an open `torch` requirement would pull a CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[book,test,cluster,federated]'
	touch $@

# Offline book assets, fetched once: the Vega bundle from vl-convert-python (installed)
# and MathJax 3 via `npm pack mathjax@3` (cached in $(LOTTERY_CACHE_DIR)/npm) into
# book/_static and book/_extra (git-ignored). `lottery book` does the same on demand.
assets: venv
	$(VENV)/bin/lottery book --assets-only

book: venv assets
	$(VENV)/bin/lottery book --profile $(PROFILE)

test: venv assets
	$(PY) -m pytest -q

# Engine vs the naive way on one job, in one process (benchmarks/bench.py; JSON in
# benchmarks/results/). `make bench QUICK=1` (--quick) takes < 2 min (113 s measured) on an idle 2-core machine; the full run ~20 min.
bench: venv
	$(PY) benchmarks/bench.py $(if $(QUICK),--quick,)

clean:
	rm -rf book/_build book/chapters
