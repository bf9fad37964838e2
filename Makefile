# The two commands a newcomer runs: `make book` and `make test`. Both set up .venv first.
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
PROFILE ?= course
export LOTTERY_CACHE_DIR ?= $(CURDIR)/.cache
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: venv book test bench clean

venv: $(VENV)/.installed

# torch is installed first and pinned: an open `torch` requirement would pull a CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[book,test]'
	touch $@

book: venv
	$(VENV)/bin/lottery book --profile $(PROFILE)

test: venv
	$(PY) -m pytest -q

clean:
	rm -rf book/_build book/chapters
