"""Text modality: corpus schema and checks, prompts, masking, generator wiring, embedding, metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dp_synth.datasets import ApiKeyDataset
from dp_synth.evaluation.embeddings import GaussianFit, classifier_accuracy, frechet_distance, precision_recall
from dp_synth.modalities.text.llm import GeneratorConfigError, Secret, build_generator
from dp_synth.modalities.text.modality import (
    MASK,
    PromptTemplates,
    SentenceEmbedder,
    TextModality,
    load_corpus,
    mask_words,
    parse_corpus_schema,
)
from dp_synth.pe.interfaces import UsesStatistics
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.schema import SchemaError
from tests.conftest import PROJECT_ROOT

AGNEWS_SCHEMA = json.loads((PROJECT_ROOT / "data/01_raw/agnews/schema.json").read_text())
PROMPTS = {
    "random": "Write a {domain} about {label}: {description}.",
    "paraphrase": "Paraphrase ({label}): {text}",
    "fill_blanks": "Fill the blanks ({label}): {masked_text}",
}


REWRITE = "Markets rallied on Monday after the central bank held rates."


class RecordingGenerator:
    """A stand-in LLM that records its prompts and answers from a script."""

    description = "recording generator"

    def __init__(self, answer=lambda prompt: f"answer to {prompt}") -> None:
        self.answer = answer
        self.calls: list[tuple[list[str], float]] = []

    def generate(self, prompts, *, temperature, max_new_tokens, seed):
        self.calls.append((list(prompts), temperature))
        return [self.answer(prompt) for prompt in prompts]


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


def make_modality(generator, embedder=None, **settings) -> TextModality:
    return TextModality(
        schema=parse_corpus_schema(AGNEWS_SCHEMA),
        generator=generator,
        embedder=embedder or SentenceEmbedder(),
        prompts=PromptTemplates(**PROMPTS),
        mask_schedule=VariationSchedule(r0=0.5, rf=0.1, gamma=1.0),
        temperature_schedule=VariationSchedule(r0=1.0, rf=0.5, gamma=1.0),
        **settings,
    )


def raw_corpus(**columns) -> pd.DataFrame:
    base = {
        "Class": ["World", "Sports", "Business", "Sci/Tech"],
        "Title": ["Talks", "Final", "Shares", "Chips"],
        "Description": ["leaders met", "team won", "prices rose", "faster cpus"],
    }
    return pd.DataFrame({**base, **columns})


def test_agnews_schema_declares_public_classes_and_the_corpus_loads():
    schema = parse_corpus_schema(AGNEWS_SCHEMA)
    assert schema.classes == ("World", "Sports", "Business", "Sci/Tech")
    assert schema.class_proportions is None  # measured with a DP count, never read from the data
    private = load_corpus(pd.read_csv(PROJECT_ROOT / "data/01_raw/agnews/agnews_train.csv"), schema)
    assert list(private.columns) == ["label", "text"]
    assert len(private) == schema.public_row_count
    assert private["text"].iloc[0].startswith("Belarus")


@pytest.mark.parametrize(
    ("corrupt", "message", "kept"),
    [
        (lambda raw: raw.drop(columns="Title"), "columns ['Title'] are missing", None),
        (
            lambda raw: raw.assign(Class=["World", "Sports", "Business", "Gossip"]),
            "column 'Class' has 1 labels outside the declared classes",
            3,
        ),
        (
            lambda raw: raw.assign(Class=["World", None, "Business", "Sci/Tech"]),
            "column 'Class' has 1 missing labels",
            3,
        ),
        (
            lambda raw: raw.assign(Title=["", "a", "b", "c"], Description=[None, "a", "b", "c"]),
            "1 rows have no text in ['Title', 'Description']",
            3,
        ),
    ],
)
def test_a_corpus_that_does_not_fit_its_schema_is_refused_or_its_bad_rows_dropped(corrupt, message, kept):
    schema = parse_corpus_schema(AGNEWS_SCHEMA)
    with pytest.raises(SchemaError) as error:
        load_corpus(corrupt(raw_corpus()), schema, on_invalid="stop")
    assert message in str(error.value)
    if kept is not None:
        for on_invalid in ("clamp", "drop"):
            assert len(load_corpus(corrupt(raw_corpus()), schema, on_invalid=on_invalid)) == kept
    # A class with no rows is no error: the DP class count says so.
    assert len(load_corpus(raw_corpus().assign(Class=["World", "World", "Business", "Sci/Tech"]), schema)) == 4
    assert "Gossip" not in str(error.value)  # an undeclared private value is counted, not echoed


def test_schema_and_prompt_errors_name_the_problem():
    with pytest.raises(SchemaError, match="missing 'domain'"):
        parse_corpus_schema({k: v for k, v in AGNEWS_SCHEMA.items() if k != "domain"})
    with pytest.raises(GeneratorConfigError, match=r"unknown fields \['private_text'\]"):
        PromptTemplates(**{**PROMPTS, "random": "Copy {private_text}"})
    with pytest.raises(GeneratorConfigError, match=r"needs \{text\}"):
        PromptTemplates(**{**PROMPTS, "paraphrase": "Paraphrase something"})


def test_masking_replaces_the_scheduled_share_of_words():
    rng = np.random.default_rng(0)
    text = " ".join(f"w{i}" for i in range(20))
    assert mask_words(text, 0.25, rng).split().count(MASK) == 5
    assert mask_words(text, 0.0, rng) == text
    assert mask_words("one", 0.1, rng) == MASK


def test_random_prompts_hold_public_knowledge_only_and_labels_follow_class_sizes():
    generator = RecordingGenerator()
    modality = make_modality(generator)
    population = modality.random_population(
        {"World": 2, "Sports": 1, "Business": 0, "Sci/Tech": 1}, np.random.default_rng(0)
    )
    assert population["label"].tolist() == ["World", "World", "Sports", "Sci/Tech"]
    prompts, temperature = generator.calls[0]
    assert prompts[0] == "Write a news article about World: " + AGNEWS_SCHEMA["classes"]["World"] + "."
    assert temperature == 1.0
    assert population["text"].iloc[2] == "answer to " + prompts[2]


def test_variation_follows_the_schedule_keeps_labels_and_never_loses_a_candidate():
    generator = RecordingGenerator(answer=lambda prompt: "" if "(World)" in prompt else REWRITE)
    modality = make_modality(generator)
    survivors = pd.DataFrame({"label": ["World", "Sports"], "text": ["x " * 10, "y " * 10]})
    varied = modality.vary(survivors, iteration=1, iterations=2, rng=np.random.default_rng(1))
    prompts, temperature = generator.calls[0]
    assert temperature == pytest.approx(0.75)
    assert [prompt.count(MASK) for prompt in prompts] == [3, 3]  # mask share r(1) = 0.3 of 10 words
    assert varied["label"].tolist() == ["World", "Sports"]
    assert varied["text"].iloc[1] == REWRITE
    assert varied["text"].iloc[0] == survivors["text"].iloc[0]  # only empty rewrites: the survivor stays
    assert len(generator.calls) == 3  # the empty rewrite was asked for again, up to max_attempts

    paraphrasing = make_modality(RecordingGenerator(), paraphrase_share=1.0)
    paraphrasing.vary(survivors, 1, 2, np.random.default_rng(1))
    assert paraphrasing.generator.calls[0][0][1] == "Paraphrase (Sports): " + survivors["text"].iloc[1]


def test_the_text_generator_uses_no_dp_statistics():
    assert not isinstance(make_modality(RecordingGenerator()), UsesStatistics)


def test_packaged_minilm_embeds_offline_with_unit_norm_and_meaning(embedder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = [
        "The central bank raised interest rates.",
        "Interest rates were increased by the central bank.",
        "The striker scored twice in the final.",
    ]
    embeddings = embedder.encode(texts)
    assert embeddings.shape == (3, 384) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert embeddings[0] @ embeddings[1] > embeddings[0] @ embeddings[2] + 0.3


def test_a_missing_embedding_directory_is_refused_at_once(tmp_path):
    with pytest.raises(GeneratorConfigError, match="not a local directory"):
        SentenceEmbedder(model=str(tmp_path / "absent"))


def test_no_configured_generator_says_how_to_configure_one():
    with pytest.raises(GeneratorConfigError, match="no text generator is configured: set text.generator.backend"):
        build_generator(None, {}, None)
    with pytest.raises(GeneratorConfigError, match="unknown text.generator.backend 'gpt'"):
        build_generator("gpt", {}, None)
    with pytest.raises(GeneratorConfigError, match="text.generator.openai_compatible.model is not set"):
        build_generator("openai_compatible", {"openai_compatible": {"base_url": "http://x", "model": None}}, None)
    with pytest.raises(GeneratorConfigError, match="unexpected keyword argument 'temprature'"):
        build_generator(
            "openai_compatible", {"openai_compatible": {"base_url": "http://x", "model": "m", "temprature": 1}}, None
        )


def test_the_api_key_dataset_never_shows_the_key():
    dataset = ApiKeyDataset(credentials={"api_key": "sk-SHOWN-NOWHERE"})
    assert dataset.load() == Secret("sk-SHOWN-NOWHERE")
    assert "sk-SHOWN-NOWHERE" not in repr(dataset) + str(dataset) + repr(dataset.load()) + str(dataset.load())
    assert ApiKeyDataset(credentials={"api_key": None}).load() is None
    assert ApiKeyDataset().load() is None


def test_frechet_distance_precision_recall_and_classifier_on_known_clouds():
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(600, 4))
    shifted = cloud + np.array([3.0, 0.0, 0.0, 0.0])
    assert frechet_distance(GaussianFit.of(cloud), GaussianFit.of(cloud)) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(GaussianFit.of(cloud), GaussianFit.of(shifted)) == pytest.approx(9.0, rel=1e-6)
    scaled = GaussianFit(np.zeros(4), 4.0 * np.eye(4))
    assert frechet_distance(GaussianFit(np.zeros(4), np.eye(4)), scaled) == pytest.approx(4.0)  # 4 x (1 + 4 - 2 x 2)
    same = precision_recall(cloud[:300], cloud[300:], k=3)
    assert same["precision"] > 0.85 and same["recall"] > 0.85
    far = precision_recall(cloud, cloud + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0}
    collapsed = precision_recall(cloud, np.repeat(cloud[:1], 50, axis=0) + 1e-3 * rng.normal(size=(50, 4)), k=3)
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.05  # mode collapse: precise, no recall
    labels = (cloud[:, 0] > 0).astype(int)
    assert classifier_accuracy(cloud, labels, cloud, labels, seed=0)["accuracy"] > 0.95
    assert classifier_accuracy(cloud, np.zeros(600), cloud, labels, seed=0)["accuracy"] == pytest.approx(
        (labels == 0).mean()
    )


def test_a_missing_text_extra_is_named_with_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith(("torch.", "dp_synth.modalities.text.llm_local")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_torch)
    with pytest.raises(GeneratorConfigError, match=r"needs the text extra .*pip install -e '.\[text\]'"):
        build_generator("huggingface", {"huggingface": {"model": "/some/model"}}, None)


def test_a_run_that_would_take_hours_says_so_after_its_first_drafts(monkeypatch, caplog):
    import dp_synth.modalities.text.modality as modality_module

    clock = iter(range(0, 10**6, 60))  # each reading of the clock a minute after the last
    monkeypatch.setattr(modality_module.time, "monotonic", lambda: next(clock))
    generator = RecordingGenerator(answer=lambda prompt: REWRITE)
    modality = make_modality(generator, planned_texts=6400)
    with caplog.at_level("INFO", logger="dp_synth.modalities.text.modality"):
        population = modality.random_population({"World": 100, "Sports": 0}, np.random.default_rng(0))
    assert len(population) == 100
    assert [len(prompts) for prompts, _ in generator.calls] == [64, 36]  # the first 64 timed, then the rest
    (record,) = [record for record in caplog.records if "hours to generate" in record.message]
    assert record.levelname == "WARNING" and "the run's 6400 texts" in record.message
    assert "about 1.7 hours" in record.message  # 60 s / 64 texts x 6400 texts
