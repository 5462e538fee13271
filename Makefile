# StudyShelf — `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_WORKERS ?= 2

.PHONY: run test lint fmt messages bench bench-analytics bench-backup bench-upload install clean

# The server's own dependencies (requirements.lock) for `make run`; the test and lint tools on top
# (requirements-dev.lock, a superset at the same versions) for everything else.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

# With STUDYSHELF_BACKUP_URL set, Litestream replicates beside serve; it stops when serve stops.
run: $(STAMP)
	$(BIN)/studyshelf migrate
	$(BIN)/studyshelf demo --if-empty
	if [ -n "$$STUDYSHELF_BACKUP_URL" ]; then \
		$(BIN)/studyshelf backup replicate & replicator=$$!; \
		trap 'kill $$replicator 2>/dev/null' EXIT INT TERM; \
		$(BIN)/studyshelf serve; \
	else \
		exec $(BIN)/studyshelf serve; \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(DEV_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: $(DEV_STAMP) lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

# Extract the UI's strings into locale/messages.pot and merge them into every language's messages.po
# (translate the new entries there; the app compiles the .po files when it starts: web/i18n.py).
LOCALE_DIR := src/studyshelf/locale
messages: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header -o $(LOCALE_DIR)/messages.pot src/studyshelf
	$(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --no-fuzzy-matching --ignore-pot-creation-date

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.delivery
	$(BIN)/python -m bench.encryption
	$(BIN)/python -m bench.s3
	$(BIN)/python -m bench.media
	$(BIN)/python -m bench.media_processing
	$(BIN)/python -m bench.offload
	$(BIN)/python -m bench.viewer
	$(BIN)/python -m bench.analytics_ingest
	$(BIN)/python -m bench.analytics_queries
	$(BIN)/python -m bench.analytics_live
	$(BIN)/python -m bench.analytics_export
	$(BIN)/python -m bench.backup
	$(BIN)/python -m bench.cluster

bench-analytics: $(DEV_STAMP)
	$(BIN)/python -m bench.analytics_ingest
	$(BIN)/python -m bench.analytics_queries
	$(BIN)/python -m bench.analytics_live
	$(BIN)/python -m bench.analytics_export

bench-backup: $(DEV_STAMP)
	$(BIN)/python -m bench.backup

bench-upload: $(DEV_STAMP)
	$(BIN)/python -m bench.upload_memory

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
