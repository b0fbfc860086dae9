"""The local backend's next-token log-probabilities (``llm.TokenLogprobModel``): cached, batched
and padded reads agree with one plain forward pass per sequence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dp_synth.modalities.text import fewshot
from dp_synth.modalities.text.llm import GeneratorConfigError, TokenLogprobModel, require_token_logprobs
from dp_synth.modalities.text.llm_http import OpenAICompatibleGenerator
from dp_synth.modalities.text.llm_local import HuggingFaceGenerator
from dp_synth.modalities.text.modality import LABEL, TEXT, CorpusSchema
from dp_synth.pe.noise import NoiseSource
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


def test_line_ends_are_the_end_of_text_and_line_breaks(generator):
    tokenizer = generator._load()[1]
    assert generator.ends_line(tokenizer.eos_token_id)
    pieces = {token: tokenizer.decode([token]) for token in range(len(tokenizer))}
    assert all(
        generator.ends_line(token) == ("\n" in piece)
        for token, piece in pieces.items()
        if token != tokenizer.eos_token_id
    )
    assert generator.decode_tokens(tokenizer("a fox")["input_ids"]) == "a fox"


def test_the_http_backend_decodes_and_scores_through_completions_log_probabilities(llm_server):
    http = OpenAICompatibleGenerator(base_url=llm_server.url, model="m", endpoint="completions", top_logprobs=3)
    assert isinstance(require_token_logprobs(http), TokenLogprobModel)
    decoding = http.start_decoding(["Topic: World\nText:", "Text: one two"], max_new_tokens=4)
    first = decoding.logprobs()
    words = dict(zip(http._vocabulary.pieces, first[0], strict=True))
    assert words == {" a": -0.3, " b": -1.5, "\n": -3.0}
    assert np.exp(first[1]).sum() == pytest.approx(np.exp(-0.1) + np.exp(-3.0))  # unnamed tokens: probability 0
    a = http._vocabulary.ids[" a"]
    decoding.extend(np.array([a, a]))
    assert {request.body["prompt"] for request in llm_server.requests[-2:]} == {
        "Topic: World\nText: a",
        "Text: one two a",
    }
    assert all(request.body["logprobs"] == 3 and request.body["max_tokens"] == 1 for request in llm_server.requests)
    assert http.decode_tokens([a, a]) == " a a" and http.ends_line(http._vocabulary.ids["\n"])
    scores = http.continuation_logprobs("Header.\n", ["Text: x\nTopic:"], [" Sports", " Sci/Tech"])
    assert scores == pytest.approx(np.array([[-0.7, -0.9]]))  # one echoed token each, -0.1 a character
    assert llm_server.requests[-1].body["echo"] is True


def test_a_model_without_next_token_log_probabilities_is_refused_by_name():
    chat = OpenAICompatibleGenerator(base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(GeneratorConfigError, match="endpoint: completions"):
        chat.check_token_logprobs(full_vocabulary=False)
    completions = OpenAICompatibleGenerator(base_url="http://127.0.0.1:9/v1", model="m", endpoint="completions")
    with pytest.raises(GeneratorConfigError, match="public_top_k"):
        completions.check_token_logprobs(full_vocabulary=True)

    class Writer:
        description = "a model that only writes"

    with pytest.raises(GeneratorConfigError, match="does not expose next-token log-probabilities"):
        require_token_logprobs(Writer())


def test_dp_demonstrations_through_the_http_backend(llm_server):
    http = OpenAICompatibleGenerator(base_url=llm_server.url, model="m", endpoint="completions", top_logprobs=3)
    table = pd.DataFrame({LABEL: ["World"] * 6, TEXT: [f"private {index}" for index in range(6)]})
    groups = fewshot.partition(table, ("World",), 1, 3, 2, np.random.default_rng(0))
    schema = CorpusSchema("Class", ("Text",), ("World",), {"World": "world news"}, "news article", 6)
    vote = fewshot.VoteSettings(max_new_tokens=5, top_k=2, sigma=1e-9, sensitivity=2**0.5)
    noise = lambda t: NoiseSource(np.random.default_rng(t), secure=False)  # noqa: E731
    released = fewshot.generate_demonstrations(http, groups, fewshot.FewShotPrompts(), schema, vote, noise)
    assert released[TEXT].tolist() == ["a a"]  # the fake server's likeliest tokens, then a line break
