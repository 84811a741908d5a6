# Two commands set everything up on a fresh machine with Python 3.11 and pip:
#   make demo   creates .venv and runs the demo (sample inputs -> ERA ingest -> join)
#   make test   creates .venv and runs the tests
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PYTHONUNBUFFERED := 1

.PHONY: venv demo lint test up down mlflow-ui browser bench-ingest bench-join bench-train bench-validation bench-month bench-gpu bench-gapfill clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ml4l.docs_assets   # Data Docs' CSS and JavaScript, for reading them offline (npm pack)
	touch $(STAMP)

demo: venv
	$(BIN)/ml4l demo

# ruff and mypy on the library (configured in pyproject.toml, pinned in requirements.lock)
lint: venv
	$(BIN)/ruff check ml4l
	$(BIN)/ruff format --check ml4l
	$(BIN)/mypy

test: venv browser lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The local platform on 127.0.0.1: Prefect server (:4200), worker, blocks, deployments, MLflow UI (:5000)
up: venv
	$(BIN)/python deployments/local_platform.py up

down:
	$(BIN)/python deployments/local_platform.py down

# The MLflow UI alone, on the lake's store
mlflow-ui: venv
	$(BIN)/mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(CURDIR)/lake/mlflow/mlflow.db

# Debian's Chromium and ChromeDriver, for the UI tests
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver)

bench-ingest: venv
	$(BIN)/python benchmarks/bench_ingest.py

bench-join: venv
	$(BIN)/python benchmarks/bench_join.py

bench-train: venv
	$(BIN)/python -m benchmarks.bench_train

bench-validation: venv
	$(BIN)/python -m benchmarks.bench_validation

bench-month: venv
	$(BIN)/python -m benchmarks.bench_month --days 31

bench-gpu: venv
	$(BIN)/python -m benchmarks.bench_gpu

bench-gapfill: venv
	$(BIN)/python -m benchmarks.bench_gapfill

clean:
	rm -rf $(VENV) lake .prefect .platform
