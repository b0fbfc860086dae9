"""``make bench-text``: the text job on a real LLM (SmolLM2-135M-Instruct, offline) against what a
user would pick instead, on the bundled AG News.

Private: the 2,280 bundled training texts. Judge: the seeded sample of 2,000 held-out texts the
job's own evaluation uses (``text.evaluation``); the other held-out texts are the public
validation split, the only data prompt and variation choices are made on. Every row releases the
same number of labelled texts and is judged alike:

- utility: accuracy on the judge texts of a logistic regression on the packaged MiniLM
  embeddings, and of a TF-IDF logistic regression on the words (a learner that does not share
  the embedding the vote uses), both trained on the released texts;
- fidelity: Frechet distance and precision/recall (k = 3) against the judge texts' embeddings;
  distinct texts and mean words;
- cost: CPU seconds of the whole row (model load, generation, training, embedding; child
  processes included).

Rows (``--rows`` picks some; each one is saved to ``--out`` as soon as it is measured):
``real`` (real private texts: the non-private bound), ``random_api`` (epsilon 0: public prompts
alone), ``augpe_1``, ``augpe_4``, ``augpe_inf`` (``kedro run --pipeline=text``, the default plan;
"inf" is epsilon 1000, a noise sigma below 0.01), ``finetune_1``, ``finetune_4`` (DP-SGD LoRA,
``dp_finetune.py``), ``augpe_http`` (epsilon 1 through the OpenAI-compatible backend against
``transformers serve`` on 127.0.0.1, started and stopped here), and ``variation`` (paraphrase
against fill-in-the-blanks on validation texts: usable share, similarity to the source,
Frechet distance to the validation split).

Usage::

    python benchmarks/text_figures.py [--rows real,augpe_1,...] [--seed 0] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from dp_synth.evaluation.embeddings import GaussianFit, classifier_accuracy, frechet_distance, precision_recall
from dp_synth.modalities.text.modality import LABEL, TEXT, SentenceEmbedder, load_corpus, parse_corpus_schema
from dp_synth.modalities.text.settings import TextSettings
from dp_synth.pe.accounting import default_delta

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from bench import run_once  # noqa: E402

AGNEWS = PROJECT_ROOT / "data" / "01_raw" / "agnews"
MODEL = PROJECT_ROOT / "data" / "06_models" / "smollm2-135m-instruct"
OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "bench_text.json"
RELEASE = PROJECT_ROOT / "data" / "07_model_output" / "text" / "synthetic_texts.csv"
ROWS = ("variation", "real", "random_api", "augpe_1", "augpe_4", "finetune_4", "augpe_inf", "finetune_1", "augpe_http")
NO_NOISE_EPSILON = 1000.0
VARIATION_TEXTS = 96
HTTP_TEXTS = 64


class Corpus:
    """The bundled AG News split three ways, and the judge texts embedded once."""

    def __init__(self) -> None:
        self.schema = parse_corpus_schema(json.loads((AGNEWS / "schema.json").read_text()))
        self.private = load_corpus(pd.read_csv(AGNEWS / "agnews_train.csv"), self.schema)
        held_out = load_corpus(pd.read_csv(AGNEWS / "agnews_test.csv"), self.schema)
        evaluation = TextSettings().evaluation
        self.judge = held_out.sample(n=evaluation.reference_rows, random_state=evaluation.seed)
        self.validation = held_out.drop(self.judge.index).reset_index(drop=True)
        self.judge = self.judge.reset_index(drop=True)
        self.embedder = SentenceEmbedder()
        self.judge_embeddings = self.embedder.encode(self.judge[TEXT].tolist())

    def measure(self, texts: pd.DataFrame, seed: int) -> dict[str, float]:
        """Utility and fidelity of labelled ``texts`` against the judge texts."""
        embeddings = self.embedder.encode(texts[TEXT].tolist())
        words = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=1), LogisticRegression(max_iter=2000))
        words.fit(texts[TEXT], texts[LABEL])
        return {
            "texts": len(texts),
            "distinct": int(texts[TEXT].nunique()),
            "mean_words": float(texts[TEXT].str.split().str.len().mean()),
            "accuracy": classifier_accuracy(
                embeddings, texts[LABEL].to_numpy(), self.judge_embeddings, self.judge[LABEL].to_numpy(), seed
            )["accuracy"],
            "accuracy_tfidf": float((words.predict(self.judge[TEXT]) == self.judge[LABEL]).mean()),
            "frechet_distance": frechet_distance(GaussianFit.of(embeddings), GaussianFit.of(self.judge_embeddings)),
            **precision_recall(self.judge_embeddings, embeddings, 3),
        }


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def equal_class_sizes(corpus: Corpus, rows: int) -> dict[str, int]:
    """``rows`` split equally across the declared classes (class proportions are not public)."""
    base, extra = divmod(rows, len(corpus.schema.classes))
    return {label: base + (index < extra) for index, label in enumerate(corpus.schema.classes)}


def real_texts(corpus: Corpus, rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``rows`` real private texts drawn at random: the non-private bound."""
    return corpus.private.sample(n=rows, random_state=seed).reset_index(drop=True), {}


def text_modality(**generator: Any) -> Any:
    """The text job's modality on SmolLM2, its default settings otherwise."""
    from dp_synth.pipelines.text.nodes import build_modality

    settings = TextSettings.model_validate(
        {"generator": {"backend": "huggingface", "huggingface": {"model": str(MODEL)}, **generator}}
    )
    return build_modality(json.loads((AGNEWS / "schema.json").read_text()), settings, None)


def random_api_texts(corpus: Corpus, rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Epsilon 0: the random API alone, from the public class descriptions."""
    population = text_modality().random_population(equal_class_sizes(corpus, rows), np.random.default_rng(seed))
    return population, {}


def augpe_texts(epsilon: float, backend_params: str = "") -> Callable[[Corpus, int, int], tuple[pd.DataFrame, dict]]:
    """An Aug-PE row: the real ``kedro run --pipeline=text`` at ``epsilon``, the default plan
    (``backend_params``: another backend, and any other settings, instead of the local SmolLM2)."""

    def run(corpus: Corpus, rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
        backend = backend_params or f"text.generator.backend=huggingface,text.generator.huggingface.model={MODEL}"
        params = f"text.release.rows={rows},{backend},text.dp.epsilon={epsilon},text.dp.seed={seed}"
        wall, _ = run_once("text", params)
        extra = {"wall_seconds": wall}
        latest = max(RELEASE.glob("*/*.csv"))  # the catalog versions the release by timestamp
        return pd.read_csv(latest, keep_default_na=False), extra

    return run


def finetune_texts(epsilon: float) -> Callable[[Corpus, int, int], tuple[pd.DataFrame, dict]]:
    """A DP fine-tuning row: LoRA DP-SGD for one epoch at ``epsilon``, then sampling."""

    def run(corpus: Corpus, rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
        from dp_finetune import finetune_and_sample

        result = finetune_and_sample(
            MODEL,
            corpus.private,
            equal_class_sizes(corpus, rows),
            epsilon=epsilon,
            delta=default_delta(len(corpus.private)),
            seed=seed,
        )
        extra = {
            "cpu_seconds_by_stage": result.cpu_seconds,
            "steps": result.steps,
            "noise_multiplier": result.noise_multiplier,
            "epsilon_opacus_prv": result.epsilon_opacus,
        }
        return result.texts, extra

    return run


def free_port() -> int:
    """A free TCP port on the loopback address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def transformers_server(model: Path, timeout: float = 300.0) -> Iterator[str]:
    """``transformers serve`` on 127.0.0.1 serving ``model`` (offline); yields its base URL, stops it."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("transformers")), "serve", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--continuous-batching"]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"transformers serve did not answer on {url}") from None
                time.sleep(2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)


def augpe_http_texts(corpus: Corpus, rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Aug-PE at epsilon 1 through the OpenAI-compatible backend against a real local server, on
    ``HTTP_TEXTS`` candidates and released texts (the path and its throughput, not the quality)."""
    with transformers_server(MODEL) as url:
        backend = (
            f"text.release.rows={HTTP_TEXTS},text.pe.population_size={HTTP_TEXTS},"
            "text.generator.backend=openai_compatible,"
            f"text.generator.openai_compatible.base_url={url},text.generator.openai_compatible.model={MODEL},"
            "text.generator.openai_compatible.max_concurrency=16"
        )
        return augpe_texts(1.0, backend)(corpus, rows, seed)


def variation_table(corpus: Corpus, seed: int) -> dict[str, Any]:
    """Paraphrase against fill-in-the-blanks on ``VARIATION_TEXTS`` validation texts (public data)."""
    sources = corpus.validation.sample(n=VARIATION_TEXTS, random_state=seed).reset_index(drop=True)
    source_embeddings = corpus.embedder.encode(sources[TEXT].tolist())
    validation = GaussianFit.of(corpus.embedder.encode(corpus.validation[TEXT].tolist()))
    table = {"sources_frechet_distance": frechet_distance(GaussianFit.of(source_embeddings), validation)}
    for name, share in (("paraphrase", 1.0), ("fill_blanks", 0.0)):
        modality = text_modality(variation={"paraphrase_share": share})
        started = cpu_seconds()
        varied = modality.vary(sources, 1, 2, np.random.default_rng(seed))
        embeddings = corpus.embedder.encode(varied[TEXT].tolist())
        changed = (varied[TEXT] != sources[TEXT]).to_numpy()
        table[name] = {
            "usable_share": float(changed.mean()),
            "cosine_to_source": float((embeddings * source_embeddings).sum(axis=1)[changed].mean()),
            "frechet_distance": frechet_distance(GaussianFit.of(embeddings[changed]), validation),
            "mean_words": float(varied[TEXT][changed].str.split().str.len().mean()),
            "cpu_seconds": cpu_seconds() - started,
        }
    return table


def row_runner(name: str) -> Callable[[Corpus, int, int], tuple[pd.DataFrame, dict]]:
    """The function that produces row ``name``'s texts."""
    runners = {
        "real": real_texts,
        "random_api": random_api_texts,
        "augpe_1": augpe_texts(1.0),
        "augpe_4": augpe_texts(4.0),
        "augpe_inf": augpe_texts(NO_NOISE_EPSILON),
        "finetune_1": finetune_texts(1.0),
        "finetune_4": finetune_texts(4.0),
        "augpe_http": augpe_http_texts,
    }
    return runners[name]


ROW_LABELS = {
    "real": "real private texts (not private)",
    "random_api": "random API alone (epsilon 0)",
    "augpe_1": "Aug-PE, epsilon 1",
    "augpe_4": "Aug-PE, epsilon 4",
    "augpe_inf": "Aug-PE, no noise",
    "finetune_1": "DP fine-tuning, epsilon 1",
    "finetune_4": "DP fine-tuning, epsilon 4",
    "augpe_http": f"Aug-PE, epsilon 1, HTTP backend ({HTTP_TEXTS} texts)",
}


def print_table(results: dict[str, Any]) -> None:
    """The results as the markdown table of docs/benchmarks.md."""
    print("| row | accuracy, MiniLM | accuracy, TF-IDF | Frechet | precision | recall | distinct | words | CPU s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, label in ROW_LABELS.items():
        if name not in results:
            continue
        row = results[name]
        cpu = "-" if row["cpu_seconds"] is None else f"{row['cpu_seconds']:.0f}"
        print(
            f"| {label} | {row['accuracy']:.3f} | {row['accuracy_tfidf']:.3f} | {row['frechet_distance']:.3f} | "
            f"{row['precision']:.3f} | {row['recall']:.3f} | {row['distinct']}/{row['texts']} | "
            f"{row['mean_words']:.1f} | {cpu} |"
        )
    if "variation" in results:
        print(json.dumps(results["variation"], indent=1))


def main() -> None:
    """Measure the chosen rows, saving each as soon as it is done, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--texts", type=int, default=TextSettings().release.rows, help="texts per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    arguments = parser.parse_args()
    corpus = Corpus()
    results = json.loads(arguments.out.read_text()) if arguments.out.exists() else {}
    for name in arguments.rows.split(","):
        print(f"== {name}", flush=True)
        started = cpu_seconds()
        if name == "variation":
            results[name] = variation_table(corpus, arguments.seed)
        else:
            try:
                texts, extra = row_runner(name)(corpus, arguments.texts, arguments.seed)
            except (RuntimeError, subprocess.CalledProcessError) as error:  # one row's failure ends only that row
                print(f"{name} failed: {error}", flush=True)
                continue
            results[name] = {**corpus.measure(texts, arguments.seed), "cpu_seconds": cpu_seconds() - started, **extra}
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(json.dumps(results, indent=1))
        print(json.dumps(results[name]), flush=True)
    print_table(results)


if __name__ == "__main__":
    main()
