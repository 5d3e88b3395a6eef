# Yicun (益村). Two commands set up a fresh machine: `make run` (demo on SQLite) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB_URL ?= sqlite:///instance/yicun.db
PORT   ?= 5000
# PostgreSQL for the second test run (trust auth on the dev/CI machine).
YICUN_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
export YICUN_TEST_PG_URL

.PHONY: run test test-sqlite test-postgres test-fast install bench lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

install: $(STAMP)

## make run [PORT=5000]: create the venv, install, create + seed the SQLite database, deploy bpmn/, serve the
## demo on 127.0.0.1:$(PORT) (development server; creates instance/secret_key once, mode 0600)
run: $(STAMP)
	YICUN_DATABASE_URL=$(DB_URL) $(BIN)/yicun init --demo
	YICUN_DATABASE_URL=$(DB_URL) $(BIN)/yicun serve --demo --host 127.0.0.1 --port $(PORT)

## make test: the whole suite on SQLite, then the database tests again on PostgreSQL
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=sqlite
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=postgresql -m db

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=sqlite

test-postgres: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=postgresql -m db

## make test-fast: the inner loop on SQLite, everything but the tests marked slow (`make test` runs those too)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=sqlite -m "not slow"

## make lint: ruff, then mypy, over engine/ and web/ (configured in pyproject.toml); fails if either finds anything
lint: $(STAMP)
	$(BIN)/ruff check engine web; ruff=$$?; $(BIN)/mypy && exit $$ruff

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_step.py

clean:
	rm -rf $(VENV) instance *.egg-info
