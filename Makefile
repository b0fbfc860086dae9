# dp-synth: every target sets up the virtual environment it needs, so one command is enough.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
KEDRO := $(VENV)/bin/kedro
STAMP := $(VENV)/.installed

# Never prompt, never phone home (CI and scripts have no terminal).
export DO_NOT_TRACK := 1
export KEDRO_DISABLE_TELEMETRY := 1

.PHONY: install run test bench viz mlflow-ui clean-outputs

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

bench: $(STAMP)  ## Wall time per stage of the default tabular job
	$(PYTHON) benchmarks/bench_tabular.py --repeats 3

viz: $(STAMP)  ## kedro-viz on http://127.0.0.1:4141
	$(KEDRO) viz run --no-browser

mlflow-ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean-outputs:  ## Delete every run's outputs (populations, releases, reports, MLflow store)
	rm -rf data/0[2-9]_*/* mlflow.db mlartifacts
