# dp-synth: every target sets up the virtual environment it needs, so one command is enough.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
KEDRO := $(VENV)/bin/kedro
STAMP := $(VENV)/.installed

# Never prompt, never phone home (CI and scripts have no terminal).
export DO_NOT_TRACK := 1
export KEDRO_DISABLE_TELEMETRY := 1

BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install run test bench bench-compare bench-deps viz mlflow-ui clean-outputs

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the project with its test tools

run: $(STAMP)  ## Tabular PE on the bundled Adult data
	$(KEDRO) run --pipelines=tabular

test: $(STAMP)  ## The whole test suite
	$(PYTHON) -m pytest

bench: $(STAMP)  ## Wall time per stage of the default tabular job (3 runs of kedro run)
	$(PYTHON) benchmarks/bench_tabular.py --repeats 3

$(BENCH_STAMP): $(STAMP)
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[test,bench]"
	$(PYTHON) -m pip install --quiet --no-deps smartnoise-synth==1.0.8 smartnoise-sql==1.0.10
	touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP)  ## Install the competitors (MST, AIM) for bench-compare

bench-compare: $(BENCH_STAMP)  ## dp-synth vs MST and AIM on Adult and XOR tables (about 20 min)
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/compare.py --competitors mst,aim

viz: $(STAMP)  ## kedro-viz on http://127.0.0.1:4141
	$(KEDRO) viz run --no-browser

mlflow-ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean-outputs:  ## Delete every run's outputs (populations, releases, reports, MLflow store)
	rm -rf data/0[2-9]_*/* mlflow.db mlartifacts
