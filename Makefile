# The front door. `make help` lists every target; each is a thin wrapper over a
# script that also runs on its own.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PYTEST_ARGS ?=
RUN_E2E = $(UV) run pytest -v -s tests/stack $(PYTEST_ARGS)
RUN_SCALE_OUT = $(UV) run pytest -v -s tests/scale_out $(PYTEST_ARGS)
PHASE = infra/scripts/phase.sh
include images/images.mk
include .github/ci.mk

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## Create .venv with the package, every step's dependencies and the dev tools (from uv.lock)
	$(UV) sync --frozen --compile-bytecode

.PHONY: lint
# Test names are the specification and pytest fixtures shadow by design: both checks are off in tests.
lint: install install-airflow ## pylint on the package, the DAGs and the tests; the generated files are current
	$(UV) run python -m pipeline_steps.tools.generate --check
	$(UV) run pylint pipeline_steps
	$(UV) run pylint --disable=missing-function-docstring,redefined-outer-name tests/*.py tests/unit tests/images tests/stack tests/scale_out
	$(UV) run pylint infra/scripts/airflow_client.py infra/scripts/stack.py infra/scripts/predict.py \
	  infra/scripts/feedback.py
	$(UV) run pylint bench/stack.py bench/runs.py bench/dag.py bench/on_stack.py bench/scale.py bench/serve.py \
	  images/bench/report.py images/layers.py
	cd orchestration && $(UV) run pylint dags airflow_preloaded.py
	cd orchestration && $(UV) run pylint --disable=missing-function-docstring,redefined-outer-name ../tests/dags

.PHONY: generate
generate: install ## Write dvc.yaml, .env.example and README's settings table from the declarations of the steps and the settings
	$(UV) run python -m pipeline_steps.tools.generate

.PHONY: install-airflow
install-airflow: ## Create orchestration/.venv: Airflow and the docker provider (from orchestration/uv.lock)
	cd orchestration && $(UV) sync --frozen --compile-bytecode

.PHONY: test-dags
# The step-result tests start real containers of the check-data image.
test-dags: install-airflow docker-ready ## DAG integrity, gate and step-container tests, in the Airflow environment
	@docker image inspect ct-check-data:latest >/dev/null 2>&1 || images/build.sh check-data
	cd orchestration && $(UV) run pytest --confcutdir=../tests/dags -p no:cacheprovider ../tests/dags $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install ## Unit tests of the steps against real local S3 (SeaweedFS) and MLflow servers
	$(UV) run pytest tests/unit $(PYTEST_ARGS)

.PHONY: test
test: ## Everything CI checks: lint, images, DAG tests, unit and image tests, end to end, scale-out (each phase timed)
	@$(PHASE) lint $(MAKE) lint
	@$(PHASE) ci-lint $(MAKE) ci-lint
	@$(PHASE) build-images $(MAKE) build-images
	@$(PHASE) test-dags $(MAKE) test-dags
	@$(PHASE) unit-and-image-tests $(UV) run pytest --durations=15 $(PYTEST_ARGS)
	@$(PHASE) e2e $(RUN_E2E)
	@$(PHASE) scale-out $(RUN_SCALE_OUT)

.PHONY: test-scale-out
test-scale-out: install build-images ## The Celery profile on stacks of their own: two workers, two runs at once, a worker lost mid-run; a worker on "another host"
	$(RUN_SCALE_OUT)

.PHONY: e2e
e2e: install build-images ## A stack of its own from nothing: health, REST API, real DAG runs, restart; then removed
	$(RUN_E2E)

.PHONY: repro
repro: install ## Run the whole pipeline on local files with DVC (no Airflow, no Docker)
	$(UV) run dvc repro

# ---- The stack (infra/docker-compose.yml) ----
STACK := source infra/scripts/stack.sh && compose

.PHONY: up
up: ## Start the whole stack (Postgres, S3, MLflow, Airflow), publish the first dataset, wait until healthy
	infra/scripts/up.sh

.PHONY: down
down: ## Stop the stack; volumes (runs, models, data) are kept
	@source infra/scripts/stack.sh && remove_step_containers && compose down --remove-orphans

.PHONY: ps
ps: ## Show the stack's services and their health
	@$(STACK) ps

.PHONY: logs
logs: ## Follow the logs of every service (SERVICE=name for one)
	@$(STACK) logs --tail=200 -f $(SERVICE)

.PHONY: clean
clean: ## Stop the stack and delete its volumes: only with CONFIRM=yes
	@if [ "$(CONFIRM)" != yes ]; then echo "error: make clean deletes every run, model and dataset of the stack; run: make clean CONFIRM=yes" >&2; exit 2; fi
	@source infra/scripts/stack.sh && remove_step_containers && compose down --volumes --remove-orphans

.PHONY: worker
worker: ## Celery workers on this host for a stack on another (MAIN_HOST=address, WORKERS=N, QUEUES=...): README, Workers on other hosts
	infra/scripts/worker.sh

.PHONY: worker-down
worker-down: ## Stop and remove the workers make worker started on this host
	ACTION=down infra/scripts/worker.sh

.PHONY: run
run: ## Trigger ml_training_pipeline, follow it, end with one line saying what happened (CONF='{"force": true}')
	@python3 infra/scripts/airflow_client.py --conf '$(or $(CONF),{})'

.PHONY: follow
follow: ## Follow the newest run (e.g. the one make publish started) and end with one line saying what happened
	@python3 infra/scripts/airflow_client.py --follow-latest

.PHONY: approve
approve: ## Approve the model version waiting for promotion: it serves Production from now on
	@python3 infra/scripts/airflow_client.py --answer Approve

.PHONY: reject
reject: ## Reject the model version waiting for promotion: Production stays as it is
	@python3 infra/scripts/airflow_client.py --answer Reject

.PHONY: rollback
rollback: ## Serve the model version approved before the current Production one again
	@python3 infra/scripts/airflow_client.py --rollback

.PHONY: monitor
monitor: ## Trigger monitor_production now, follow it, end with one line: what the window showed and set off
	@python3 infra/scripts/airflow_client.py --monitor

.PHONY: score
score: ## Score FILE (CSV or Parquet) with the Production model: publishes it, follows batch_scoring to its one-line end
	@since="$$(date -u +%Y-%m-%dT%H:%M:%S)"; infra/scripts/publish.sh --to-score "$(FILE)" \
	  && python3 infra/scripts/airflow_client.py --follow-scoring-since "$$since"

.PHONY: predict
predict: ## Ask the model server about FILE (CSV or a JSON list of records); prints the answers (OUT=file writes them)
	@python3 infra/scripts/predict.py "$(FILE)" $(if $(OUT),--out "$(OUT)")

.PHONY: feedback
feedback: ## Tell the model server the true labels of rows it answered: FILE (CSV: request_id,label[,row]) or JSON
	@python3 infra/scripts/feedback.py "$(FILE)"

.PHONY: reproduce
reproduce: install ## Re-run a registered version from its recorded data, settings and images; compare metrics (VERSION=N)
	@test -n "$(VERSION)" || { echo "error: reproduce: name the model version: make reproduce VERSION=N" >&2; exit 2; }
	@LOG_LEVEL=$${LOG_LEVEL:-WARNING} $(UV) run --frozen python -m pipeline_steps.tools.reproduce --version "$(VERSION)" \
	  --env-file "$${ENV_FILE:-.env}" $(if $(filter-out no false 0,$(LOCAL)),--local)

.PHONY: publish
publish: ## Publish FILE (CSV or Parquet) as a new data version; the training run starts by itself
	@infra/scripts/publish.sh "$(FILE)"

.PHONY: bench
# Each bench exits 1 when it misses a target; all of them run, and then bench fails if one missed.
bench: ## Every benchmark (results in bench/results/), about 30 min on 2 cores
	@missed=""; for bench in bench-images bench-on-stack bench-scale bench-serve; do \
	  $(MAKE) --no-print-directory $$bench || missed="$$missed $$bench"; done; \
	if [ -n "$$missed" ]; then echo "bench: a target missed or a bench failed in:$$missed" >&2; exit 1; fi

.PHONY: bench-on-stack
bench-on-stack: install build-images ## bench-runs, then bench-dag, on one stack (one `make up` less: as `make bench` runs them)
	$(UV) run python bench/on_stack.py

.PHONY: bench-serve
bench-serve: install ## The model server vs mlflow models serve (wrk: 1 and 100 rows, concurrency 1 and 32), then 10 alias swaps under load
	$(UV) run python bench/serve.py

.PHONY: bench-scale
bench-scale: install ## The steps on local files vs one plain process, 10k to 5M rows: time, memory (BENCH_SCALE_ROWS=...)
	$(UV) run python bench/scale.py

.PHONY: bench-runs
bench-runs: install build-images ## A stack of its own: seconds for a run with nothing new, and from make publish to a run
	$(UV) run python bench/runs.py

.PHONY: bench-dag
bench-dag: install build-images ## A stack of its own: where a forced run's seconds go besides step work (BENCH_DAG_RUNS=5)
	$(UV) run python bench/dag.py
