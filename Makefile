# The front door. `make help` lists every target; each is a thin wrapper over a
# script that also runs on its own.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PYTEST_ARGS ?=
include images/images.mk

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## Create .venv with the package, every step's dependencies and the dev tools (from uv.lock)
	$(UV) sync --frozen

.PHONY: lint
# Test names are the specification and pytest fixtures shadow by design: both checks are off in tests.
lint: install install-airflow ## pylint on the package, the DAGs and the tests
	$(UV) run pylint pipeline_steps
	$(UV) run pylint --disable=missing-function-docstring,redefined-outer-name tests/*.py tests/unit
	cd orchestration && $(UV) run pylint dags
	cd orchestration && $(UV) run pylint --disable=missing-function-docstring,redefined-outer-name ../tests/dags

.PHONY: install-airflow
install-airflow: ## Create orchestration/.venv: Airflow and the docker provider (from orchestration/uv.lock)
	cd orchestration && $(UV) sync --frozen

.PHONY: test-dags
test-dags: install-airflow ## DAG integrity and quality-gate tests, in the Airflow environment
	cd orchestration && $(UV) run pytest --confcutdir=../tests/dags -p no:cacheprovider ../tests/dags $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install ## Unit tests of the steps against real local S3 (SeaweedFS) and MLflow servers
	$(UV) run pytest tests/unit $(PYTEST_ARGS)

.PHONY: test
test: install ## Everything CI checks: lint, then every test suite
	$(MAKE) lint
	$(UV) run pytest $(PYTEST_ARGS)

.PHONY: repro
repro: install ## Run the whole pipeline on local files with DVC (no Airflow, no Docker)
	$(UV) run dvc repro
