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

.PHONY: run test test-sqlite test-postgres test-fast install assets bench lint clean catalogues

# The web's languages: web/translations/<locale>/LC_MESSAGES/messages.po are kept in the repository, the
# compiled .mo files the app reads are made from them here (and are not committed).
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard web/translations/*/LC_MESSAGES/messages.po))
#: gettext's own names (_, gettext, ngettext…) plus lazy_gettext as _l and N_ (mark only), for pybabel extract
BABEL_KEYWORDS := -k _l -k N_

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

$(CATALOGUES): %.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -i $< -o $@

## make assets: the browser libraries (bpmn-js; later ECharts, the modeler) from npm, pinned by web/frontend/
## package-lock.json: `npm ci`, then the files the pages load (web/frontend/vendor.txt) copied into web/static/vendor/
## (not committed), which the app serves itself, never a CDN. Redone when the lock file or the list changes.
VENDOR := web/static/vendor/.installed
$(VENDOR): web/frontend/package.json web/frontend/package-lock.json web/frontend/vendor.txt
	cd web/frontend && npm ci --no-audit --no-fund
	rm -rf web/static/vendor
	grep -v -e '^#' -e '^$$' web/frontend/vendor.txt | while read -r f; do \
	  install -D -m 0644 "web/frontend/node_modules/$$f" "web/static/vendor/$$f" || exit 1; done
	touch $@

assets: $(VENDOR)

install: $(STAMP) $(CATALOGUES) $(VENDOR)

## make catalogues: after changing a page's text, extract the Chinese source strings and bring both .po files
## up to date (new strings get an empty msgstr: write the English in web/translations/en/…/messages.po)
catalogues: $(STAMP)
	$(BIN)/pybabel extract -F web/babel.cfg $(BABEL_KEYWORDS) --add-location=file --no-wrap -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --no-wrap --ignore-obsolete

## make run [PORT=5000]: create the venv, install, create + seed the SQLite database, deploy bpmn/, serve the
## demo on 127.0.0.1:$(PORT) (development server; creates instance/secret_key once, mode 0600)
run: $(STAMP) $(CATALOGUES) $(VENDOR)
	YICUN_DATABASE_URL=$(DB_URL) $(BIN)/yicun init --demo
	YICUN_DATABASE_URL=$(DB_URL) $(BIN)/yicun serve --demo --host 127.0.0.1 --port $(PORT)

## make test: the whole suite on SQLite, then the database tests again on PostgreSQL
test: $(STAMP) $(CATALOGUES) $(VENDOR)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=sqlite
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=postgresql -m db

test-sqlite: $(STAMP) $(CATALOGUES) $(VENDOR)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=sqlite

test-postgres: $(STAMP) $(CATALOGUES) $(VENDOR)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=postgresql -m db

## make test-fast: the inner loop on SQLite, everything but the tests marked slow (`make test` runs those too),
## on one pytest-xdist worker per CPU (`make test-fast XDIST=0`: one process); a test file's tests stay on one
## worker (--dist loadfile), so a module-scoped fixture (the catalogue deployed, the `init --demo` database) is
## built once; each worker has its own temporary folder and SQLite files. (--dist loadgroup would balance
## better, but pytest-xdist 3.8 ignores xdist_group marks under pytest 9.)
XDIST ?= auto
test-fast: $(STAMP) $(CATALOGUES) $(VENDOR)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db=sqlite -m "not slow" -n $(XDIST) --dist loadfile

## make lint: ruff, then mypy, over engine/ and web/ (configured in pyproject.toml); fails if either finds anything
lint: $(STAMP)
	$(BIN)/ruff check engine web; ruff=$$?; $(BIN)/mypy && exit $$ruff

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_step.py

clean:
	rm -rf $(VENV) instance *.egg-info $(CATALOGUES) web/static/vendor web/frontend/node_modules
