# StudyShelf — `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: run test lint fmt bench bench-analytics bench-upload install clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/studyshelf migrate
	$(BIN)/studyshelf demo --if-empty
	$(BIN)/studyshelf serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: $(STAMP) lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

bench: $(STAMP)
	$(BIN)/python -m bench.delivery
	$(BIN)/python -m bench.media
	$(BIN)/python -m bench.viewer
	$(BIN)/python -m bench.analytics_ingest
	$(BIN)/python -m bench.analytics_queries

bench-analytics: $(STAMP)
	$(BIN)/python -m bench.analytics_ingest
	$(BIN)/python -m bench.analytics_queries

bench-upload: $(STAMP)
	$(BIN)/python -m bench.upload_memory

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
