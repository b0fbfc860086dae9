"""The DP few-shot job's settings (``icl:`` in ``conf/base/parameters_icl.yml``), defaults in code.

The same privacy settings as every job (``dp``) and the text job's model backends; the
parameter file shows what users change.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from dp_synth.modalities.text import fewshot
from dp_synth.modalities.text.settings import ModelBackends
from dp_synth.pe.settings import PositiveInt, PrivateJobSettings, Section


class FewShotGeneration(Section):
    """``icl.fewshot``: what is written and how the private examples vote.

    Attributes:
        demonstrations_per_class: Demonstrations released per class (the classification
            prompt holds them all: 1 per class on AG News is the paper's 4-shot prompt).
        groups: Disjoint groups of private examples voting on each demonstration; the vote of
            a token sums one probability vector per group, so more groups outvote more noise.
        shots: Most private examples in a group's prompt.
        max_new_tokens: Tokens of a demonstration at most; every one is charged.
        vocabulary: ``public_top_k``: each token is chosen among the ``top_k`` likeliest of a
            zero-shot prompt (public: no private example) continued by the demonstration so far
            (the paper's reduced vocabulary); ``full``: among the whole vocabulary.
        top_k: Candidates per token with ``public_top_k``.
    """

    demonstrations_per_class: PositiveInt = 1
    groups: PositiveInt = 32
    shots: PositiveInt = 2
    max_new_tokens: PositiveInt = 48
    vocabulary: Literal["public_top_k", "full"] = "public_top_k"
    top_k: Annotated[int, Field(ge=2)] = 20


class FewShotPromptSettings(Section):
    """``icl.prompts``: the templates of ``fewshot.FewShotPrompts`` (its fields)."""

    header: str = fewshot.HEADER
    generation_shot: str = fewshot.GENERATION_SHOT
    generation_open: str = fewshot.GENERATION_OPEN
    classification_shot: str = fewshot.CLASSIFICATION_SHOT
    classification_open: str = fewshot.CLASSIFICATION_OPEN


class FewShotEvaluation(Section):
    """``icl.evaluation``: accuracy of the model on held-out texts with the released
    demonstrations and with none (a diagnostic for the data owner, not a DP release).

    Attributes:
        seed: Seed of the held-out sample.
        reference_rows: Held-out texts classified (a seeded sample); ``None``: all.
    """

    seed: int = 0
    reference_rows: PositiveInt | None = 200


class FewShotSettings(PrivateJobSettings):
    """Every setting of the DP few-shot job.

    Attributes:
        fewshot: What is written and how the private examples vote.
        generator: The language model, through the text job's backends (``text.generator``'s
            settings); it must give next-token log-probabilities (``llm.TokenLogprobModel``).
        prompts: The prompt templates.
        evaluation: The held-out accuracy.
    """

    fewshot: FewShotGeneration = FewShotGeneration()
    generator: ModelBackends = ModelBackends()
    prompts: FewShotPromptSettings = FewShotPromptSettings()
    evaluation: FewShotEvaluation = FewShotEvaluation()

    @model_validator(mode="after")
    def _only_what_applies(self) -> Self:
        if self.engine != "pandas":
            raise ValueError("engine: the icl job reads its private examples with pandas only")
        if self.dp.generator_share != 0:
            raise ValueError("dp.generator_share must be 0: the icl job releases no generator statistics")
        return self
