# Two commands on a fresh machine (Python 3.11 and make): `make demo`, `make test`.
# Both bootstrap .venv from requirements.lock, idempotently.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' -o -name '*.md' \) -print)
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := False

.PHONY: bootstrap demo test test-fast bench lint manifest clean stop

bootstrap: $(STAMP) $(MANIFEST)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

manifest: $(MANIFEST)

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	$(BIN)/crm dbt-parse

demo: bootstrap
	$(BIN)/crm demo

# two workers, whole files each: the end-to-end Airflow runs take one, the rest the other
test: bootstrap
	$(BIN)/python -m pytest tests -n 2 --dist loadfile --durations=10

test-fast: bootstrap
	$(BIN)/python -m pytest tests -m "not e2e" -n 2 --dist loadfile

bench: bootstrap
	@for b in bench/*/run.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: bootstrap
	$(BIN)/ruff check plugins dags tests bench

stop:
	-$(BIN)/crm sandbox stop
	-$(BIN)/crm warehouse stop

clean: stop
	rm -rf .crm out dbt_project/target dbt_project/logs expectations/gx/uncommitted
