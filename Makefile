# The two commands a newcomer runs: `make book` and `make test`. Both set up .venv first.
# Python 3.11 or newer (pyproject.toml's requires-python says why).
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= course
# Every install is constrained to these versions: the tested set (pinned.txt, the
# default) or each dependency's declared lower bound (lower.txt, in a fresh venv:
# `make test VENV=.venv-lower CONSTRAINTS=constraints/lower.txt`).
CONSTRAINTS ?= constraints/pinned.txt
# The extras `make venv` installs. Flower (`federated`: flwr[simulation] and Ray, ~365 MB)
# is not one of them: the federated chapter runs in process by default (identical
# numbers); `make test-flower` adds it and runs the tests that need it.
EXTRAS  ?= book,test,cluster
PIP     := $(PY) -m pip install -q -c $(CONSTRAINTS)
export LOTTERY_CACHE_DIR ?= $(CURDIR)/.cache
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: venv assets book test test-flower bench clean

venv: $(VENV)/.installed

# torch is installed first, at the constraints file's version (2.13.0 in pinned.txt): an
# open `torch` requirement would pull a CUDA build. The build comes from the index:
# PyPI's Linux wheel is the CUDA one; PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# gives the CPU build (pip prefers 2.13.0+cpu, which satisfies the pin).
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "lottery-book needs Python 3.11 or newer: run make with PYTHON=python3.11 (or newer)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch
	$(PIP) -e '.[$(EXTRAS)]'
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

# The Flower backend (CI's second job): the federated extra, a check that it imports
# (so that its tests cannot be skipped for want of it), then the tests marked `flower`
# (which `make test` skips when flwr is missing).
test-flower: venv
	$(PIP) -e '.[$(EXTRAS),federated]'
	$(PY) -c 'import flwr.simulation, ray'
	$(PY) -m pytest -q -rs -m flower

# Engine vs the naive way at paper width, in one process (benchmarks/bench.py), then the
# course width: seconds per network of engine 2 vs 3 and bf16, the course book's projected
# training time (benchmarks/course.py). JSON in benchmarks/results/. `make bench QUICK=1`
# takes ~3 min on an idle 2-core machine; the full run ~25 min.
bench: venv
	$(PY) benchmarks/bench.py $(if $(QUICK),--quick,)
	$(PY) benchmarks/course.py $(if $(QUICK),--quick,)

clean:
	rm -rf book/_build book/chapters
