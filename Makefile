# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test test-sqlite test-postgres venv bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Migrates the SQLite database in instance/, loads banks/, creates demo accounts on the first
# run (their passwords are printed and kept in instance/demo-accounts.txt) and serves the app.
run: $(STAMP)
	$(BIN)/quizengine validate banks
	$(BIN)/quizengine serve --demo --host $(HOST) --port $(PORT)

# Every test on SQLite, then the database tests again on a throwaway PostgreSQL cluster. Each pass
# runs in JOBS pytest-xdist workers (one per core by default; JOBS=0: one process), a test module
# to a worker (--dist loadscope), so a module's server and browser are started once.
JOBS   ?= auto
# pytest keeps the test modules' rewritten asserts in __pycache__ only where bytecode may be written:
# without it every pass and every worker rewrites them again (about 10 CPU seconds each).
unexport PYTHONDONTWRITEBYTECODE
PYTEST := $(BIN)/python -m pytest -q -n $(JOBS) --dist loadscope

test: test-sqlite test-postgres

test-sqlite: $(STAMP)
	scripts/ensure-debian /usr/bin/chromium chromium "the browser tests"
	scripts/ensure-debian /usr/sbin/nginx nginx "the reverse-proxy test"
	scripts/ensure-debian /usr/bin/wrk wrk "the load benchmark's smoke test"
	$(PYTEST)

test-postgres: $(STAMP)
	QUIZENGINE_TEST_POSTGRES=1 $(PYTEST) tests/web

bench: $(STAMP)
	$(BIN)/python benchmarks/calc_bench.py
	$(BIN)/python benchmarks/bank_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
