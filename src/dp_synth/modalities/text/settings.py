"""The text job's settings (``text:`` in ``conf/base/parameters_text.yml``), defaults in code.

The parameter file shows what users change: the budget, T, N, the released rows and the model
(a local directory or an OpenAI-compatible endpoint). Prompts, schedules and the rest are
research knobs with the defaults below.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from dp_synth.pe.settings import (
    EvolutionSettings,
    JobSettings,
    PositiveInt,
    PrivacySettings,
    ReleaseSettings,
    ScheduleSettings,
    Section,
)

RANDOM_PROMPT = 'Write a short {domain} in the category "{label}" ({description}). Give a headline followed by one or two sentences. Reply with the text only.\n\n'
PARAPHRASE_PROMPT = 'Rewrite the following {domain} in the category "{label}" in other words, keeping its topic and length. Reply with the rewritten text only.\n\n{text}\n\n'
FILL_BLANKS_PROMPT = 'In the following {domain} in the category "{label}", some words were replaced by _. Rewrite it with every _ replaced by suitable words. Reply with the completed text only.\n\n{masked_text}\n\n'


class TextEvolution(EvolutionSettings):
    """``text.pe``: T = 2, N = 600 texts (each one LLM call), every iteration sampling (as in
    Aug-PE): on a 135M-parameter model on 2 CPU cores, about 9-10 minutes (docs/benchmarks.md)."""

    iterations: PositiveInt = 2
    population_size: PositiveInt = 600


class TextRelease(ReleaseSettings):
    """``text.release``: 200 texts drawn from the last population, a repeated draw paraphrased,
    and one whose paraphrases all failed replaced by a candidate not yet released: the released
    texts are distinct."""

    rows: PositiveInt | Literal["auto"] = 200
    vary: bool | Literal["repeats", "distinct"] = "distinct"


class HuggingFaceSettings(Section):
    """``text.generator.huggingface``: a local causal LM through transformers.

    Attributes:
        model: A local model directory (a hub id only with ``allow_download``).
        allow_download: Never download at run time unless set.
        device: ``auto`` (cuda if available), ``cpu``, ``cuda``...
        dtype: ``auto`` (bfloat16 on a CPU with bfloat16 instructions, else float32; the
            checkpoint's own on an accelerator), ``float32``, ``bfloat16`` or ``float16``.
        batch_size: Prompts per generation batch.
        use_chat_template: ``auto``: the tokenizer's chat template when it has one.
    """

    model: str | None = None
    allow_download: bool = False
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: PositiveInt = 64
    use_chat_template: Literal["auto"] | bool = "auto"


class OpenAICompatibleSettings(Section):
    """``text.generator.openai_compatible``: any OpenAI-compatible server, or Azure OpenAI
    (``llm_http.OpenAICompatibleGenerator`` documents each setting)."""

    base_url: str | None = None
    model: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    endpoint: Literal["chat", "completions"] = "chat"
    max_concurrency: PositiveInt = 4
    timeout_seconds: Annotated[float, Field(gt=0.0)] = 60.0
    max_retries: Annotated[int, Field(ge=0)] = 5
    backoff_seconds: Annotated[float, Field(ge=0.0)] = 1.0
    api_key_header: str = "Authorization"
    extra_headers: dict[str, str] = {}
    top_logprobs: PositiveInt = 20


class TextVariation(Section):
    """``text.generator.variation``: r(t) schedules of the variation API.

    Attributes:
        paraphrase_share: Share of variations by paraphrase; the rest fill in masked words
            (small models echo the blanks: docs/benchmarks.md measures both on SmolLM2).
        mask_share: Share of words masked.
        temperature: Sampling temperature of a variation.
    """

    paraphrase_share: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    mask_share: ScheduleSettings = ScheduleSettings(r0=0.5, rf=0.2, gamma=1.0)
    temperature: ScheduleSettings = ScheduleSettings(r0=1.0, rf=0.7, gamma=1.0)


class TextPrompts(Section):
    """``text.generator.prompts``: ``str.format`` templates with the fields {label},
    {description} and {domain}, plus {text} (paraphrase) and {masked_text} (fill_blanks)."""

    random: str = RANDOM_PROMPT
    paraphrase: str = PARAPHRASE_PROMPT
    fill_blanks: str = FILL_BLANKS_PROMPT


class ModelBackends(Section):
    """The language model: its backend and each backend's settings (``llm.build_generator``).

    Attributes:
        backend: ``huggingface`` or ``openai_compatible``; ``None`` stops the run and says how
            to configure one (no model can be downloaded by default).
        huggingface: The local backend's settings.
        openai_compatible: The HTTP backend's settings.
    """

    backend: Literal["huggingface", "openai_compatible"] | None = None
    huggingface: HuggingFaceSettings = HuggingFaceSettings()
    openai_compatible: OpenAICompatibleSettings = OpenAICompatibleSettings()


class TextGenerator(ModelBackends):
    """``text.generator``: the LLM (``ModelBackends``) and how it is asked.

    Attributes:
        max_new_tokens: Bound on each generated text, in tokens.
        max_attempts: Completions asked for each text before giving up on it (an unusable one,
            such as blanks left or the prompt echoed, is redrawn).
        min_words: Fewest words of a usable text (lower it for corpora of short texts).
        random_temperature: Sampling temperature of the random API.
        variation: The variation API's schedules.
        prompts: The three prompt templates.
    """

    max_new_tokens: PositiveInt = 64
    max_attempts: PositiveInt = 3
    min_words: PositiveInt = 6
    random_temperature: Annotated[float, Field(gt=0.0)] = 1.0
    variation: TextVariation = TextVariation()
    prompts: TextPrompts = TextPrompts()


class TextEmbedding(Section):
    """``text.embedding``: the sentence embedding of the vote.

    Attributes:
        model: ``None``: the packaged all-MiniLM-L6-v2 (offline); or a local
            sentence-transformers model directory.
        batch_size: Texts per forward pass.
        device: ``None``: sentence-transformers picks (cuda if available).
    """

    model: str | None = None
    batch_size: PositiveInt = 64
    device: str | None = None


class TextEvaluation(Section):
    """``text.evaluation``: diagnostics for the data owner, not DP releases.

    Attributes:
        seed: Seed of the classifier and samples.
        reference_rows: Held-out texts embedded for the diagnostics (a seeded sample); ``None``: all.
        sample_rows: Private texts' embeddings read by the diagnostics (a seeded sample).
        precision_recall_k: k of the k-NN manifolds of precision and recall.
        samples_per_class: Texts per class in ``reports/synthetic_samples.json``.
    """

    seed: int = 0
    reference_rows: PositiveInt | None = 2000
    sample_rows: PositiveInt = 50_000
    precision_recall_k: PositiveInt = 3
    samples_per_class: Annotated[int, Field(ge=0)] = 5


class TextSettings(JobSettings):
    """Every setting of the text job."""

    dp: PrivacySettings = PrivacySettings()
    pe: TextEvolution = TextEvolution()
    release: TextRelease = TextRelease()
    generator: TextGenerator = TextGenerator()
    embedding: TextEmbedding = TextEmbedding()
    evaluation: TextEvaluation = TextEvaluation()


def backend_options(generator: ModelBackends) -> dict[str, dict[str, Any]]:
    """Each backend's constructor settings, under its name (``llm.build_generator``)."""
    return {
        "huggingface": generator.huggingface.model_dump(),
        "openai_compatible": generator.openai_compatible.model_dump(),
    }
