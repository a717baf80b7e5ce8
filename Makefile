# Two commands a newcomer needs: `make chat` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat test lint bench check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

chat: $(STAMP)
	$(BIN)/pregunta chat

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)  # before the tests: a few seconds (mypy keeps a cache in .mypy_cache)
	@echo "== ruff check (bot/, tests/, bench/)"; $(BIN)/ruff check .
	@echo "== mypy --strict (bot/)"; $(BIN)/mypy

check: $(STAMP)
	$(BIN)/pregunta content check

bench: $(STAMP)
	@for script in bench/*.py; do \
		case $$script in bench/reference_bot.py) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done  # reference_bot.py is a server that e2e_bench.py starts beside the project

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
