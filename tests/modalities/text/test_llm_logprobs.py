"""The local backend's next-token log-probabilities (``llm.TokenLogprobModel``): cached, batched
and padded reads agree with one plain forward pass per sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dp_synth.modalities.text.llm import GeneratorConfigError, TokenLogprobModel, require_token_logprobs
from dp_synth.modalities.text.llm_http import OpenAICompatibleGenerator
from dp_synth.modalities.text.llm_local import HuggingFaceGenerator
from tests.tiny_models import build_tiny_causal_lm


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> HuggingFaceGenerator:
    model = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "gpt2")
    return HuggingFaceGenerator(model, dtype="float32", batch_size=2)


def plain_logprobs(generator: HuggingFaceGenerator, ids: list[int]) -> np.ndarray:
    """Next-token log-probabilities after each token of one unpadded sequence."""
    model = generator._load()[0]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.float(), dim=-1).numpy()


def test_decoding_matches_a_plain_forward_pass_of_each_prompt(generator):
    tokenizer = generator._load()[1]
    prompts = ["The quick brown fox", "Stock prices rose", "A customer review: the product arrived"]
    decoding = generator.start_decoding(prompts, max_new_tokens=3)
    chosen = [[5, 17], [40, 3], [9, 9]]
    for step in range(3):
        got = decoding.logprobs()
        for row, prompt in enumerate(prompts):
            ids = tokenizer(prompt)["input_ids"] + chosen[row][:step]
            np.testing.assert_allclose(got[row], plain_logprobs(generator, ids)[-1], atol=1e-4)
        if step < 2:
            decoding.extend(np.array([tokens[step] for tokens in chosen]))


def test_continuation_logprobs_match_a_plain_forward_pass(generator):
    tokenizer = generator._load()[1]
    prefix, texts, continuations = "Topic list.\n", ["Stock prices rose", "The fox"], [" Sports", " Sci/Tech"]
    scores = generator.continuation_logprobs(prefix, texts, continuations)
    for row, text in enumerate(texts):
        context = tokenizer(prefix)["input_ids"] + tokenizer(text, add_special_tokens=False)["input_ids"]
        for column, continuation in enumerate(continuations):
            piece = tokenizer(continuation, add_special_tokens=False)["input_ids"]
            steps = plain_logprobs(generator, context + piece)
            expected = sum(steps[len(context) - 1 + k, token] for k, token in enumerate(piece))
            assert scores[row, column] == pytest.approx(expected, abs=1e-4)


def test_stop_tokens_are_the_end_of_text_and_line_breaks(generator):
    tokenizer = generator._load()[1]
    stops = generator.stop_tokens()
    assert tokenizer.eos_token_id in stops
    assert all("\n" in tokenizer.decode([token]) for token in stops - {tokenizer.eos_token_id})
    assert generator.decode_tokens(tokenizer("a fox")["input_ids"]) == "a fox"


def test_a_backend_without_log_probabilities_is_refused_by_name():
    http = OpenAICompatibleGenerator(base_url="http://127.0.0.1:9/v1", model="m")
    assert not isinstance(http, TokenLogprobModel)
    with pytest.raises(GeneratorConfigError, match="does not expose next-token log-probabilities"):
        require_token_logprobs(http)
