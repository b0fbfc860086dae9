"""Completions cleaned into texts; unusable ones (blanks, echoes, repetition) named, redrawn, never voted on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dp_synth.modalities.text.cleaning import clean_completion, prompt_ngrams, text_problem
from dp_synth.modalities.text.llm import GeneratorConfigError
from dp_synth.modalities.text.settings import FILL_BLANKS_PROMPT, PARAPHRASE_PROMPT, RANDOM_PROMPT
from tests.modalities.text.test_modality import REWRITE, RecordingGenerator, make_modality

ECHOES = prompt_ngrams([RANDOM_PROMPT, PARAPHRASE_PROMPT, FILL_BLANKS_PROMPT])


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        (
            '  "Stocks Rally as Fed Holds Rates"\n\nShares rose on Monday.',
            "Stocks Rally as Fed Holds Rates Shares rose on Monday.",
        ),
        (
            "Sure, here is the rewritten text:\n\n**Headline:** Fed holds rates steady as markets rise",
            "Fed holds rates steady as markets rise",
        ),
        (
            "Title: Oil prices climb\nText: Crude rose 2% in early trade on supply fears.\nThird line",
            "Oil prices climb Crude rose 2% in early trade on supply fears.",
        ),
        (
            "Rates held. Markets rose in early trading on Monday. The central bank said it would",
            "Rates held. Markets rose in early trading on Monday.",
        ),
        ("A short headline without any end", "A short headline without any end"),
        (
            "AI gives people a new way to learn about space. Justification: Adding a sentence explains it.",
            "AI gives people a new way to learn about space.",
        ),
        (
            "Shares of the carmaker fell 4% on Tuesday (Note: the figures are invented)",
            "Shares of the carmaker fell 4% on Tuesday",
        ),
    ],
)
def test_wrapping_is_removed_and_an_unfinished_last_sentence_cut(completion, text):
    assert clean_completion(completion) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Too short to use", "too short"),
        ("Recent recent _ _ _ _ _ _ Industry where the growth of luxury _ _", "blanks left"),
        ("The ___ company reported record earnings on Tuesday", "blanks left"),
        ("Reply with the completed text only, as asked above.", "prompt echoed"),
        ("the the the match was won by the home team in the end", "repetitive"),
        ("win win lose win lose win lose win lose win lose win", "repetitive"),
        (REWRITE, None),
        ("Apple's profit rose 12% on iPhone sales, the company said.", None),
    ],
)
def test_unusable_texts_are_named(text, problem):
    assert text_problem(text, echo_ngrams=ECHOES) == problem


def test_a_variation_that_returns_its_source_is_no_variation():
    assert text_problem(REWRITE, source=REWRITE.upper()) == "unchanged"
    assert text_problem(REWRITE, source="Another text of several words here.") is None


class EchoThenAnswer(RecordingGenerator):
    """A scripted small model: echoes the masked text (blanks and all) on its first answer to a
    prompt, and writes a real text only when asked again."""

    def __init__(self, answers_after: int = 1) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}
        self.answers_after = answers_after

    def generate(self, prompts, *, temperature, max_new_tokens, seed):
        self.calls.append((list(prompts), temperature))
        answers = []
        for prompt in prompts:
            self.seen[prompt] = self.seen.get(prompt, 0) + 1
            echo = prompt.split(": ", 1)[-1]
            answers.append(echo if self.seen[prompt] <= self.answers_after else f"Sure, here it is:\n{REWRITE}")
        return answers


def test_echoed_blanks_are_redrawn_and_never_become_candidates():
    generator = EchoThenAnswer()
    modality = make_modality(generator)
    survivors = pd.DataFrame(
        {"label": ["World", "Sports"], "text": ["Leaders met in Geneva to discuss a new trade deal."] * 2}
    )
    varied = modality.vary(survivors, iteration=1, iterations=2, rng=np.random.default_rng(0))
    assert len(generator.calls) == 2
    assert all("_" in prompt for prompt in generator.calls[1][0])  # the same masked prompts asked again
    assert varied["text"].tolist() == [REWRITE, REWRITE]


def test_a_model_that_never_fills_the_blanks_leaves_the_survivor_as_it_was():
    modality = make_modality(EchoThenAnswer(answers_after=10), max_attempts=2)
    survivors = pd.DataFrame({"label": ["World"], "text": ["Leaders met in Geneva to discuss a new trade deal."]})
    varied = modality.vary(survivors, iteration=1, iterations=2, rng=np.random.default_rng(0))
    assert varied["text"].tolist() == survivors["text"].tolist()
    assert len(modality.generator.calls) == 2


def test_unusable_first_drafts_are_dropped_and_a_class_without_any_stops_the_run():
    def answer(prompt: str) -> str:
        return "Sports Sports Sports Sports Sports Sports" if "Sports" in prompt else REWRITE

    modality = make_modality(RecordingGenerator(answer), max_attempts=2)
    with pytest.raises(GeneratorConfigError, match=r"no usable text for classes \['Sports'\]"):
        modality.random_population({"World": 2, "Sports": 1}, np.random.default_rng(0))
    population = modality.random_population({"World": 2, "Sports": 0}, np.random.default_rng(0))
    assert population["label"].tolist() == ["World", "World"]
