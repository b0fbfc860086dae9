"""DP few-shot demonstrations: the groups, the vote's sensitivity by removing a record, the
accounting of the token votes against dp-accounting, and the generation loop on a fake model."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import dp_accounting
import numpy as np
import pandas as pd
import pytest
from dp_accounting.pld import pld_privacy_accountant

from dp_synth.modalities.text import fewshot
from dp_synth.modalities.text.modality import LABEL, TEXT, CorpusSchema
from dp_synth.pe.accounting import calibrate, default_delta, vote_sensitivity
from dp_synth.pe.noise import NoiseSource

CLASSES = ("World", "Sports")
SCHEMA = CorpusSchema("Class", ("Text",), CLASSES, {label: label for label in CLASSES}, "news article", 400)
VOCABULARY = 50
STOP = 0


class FakeModel:
    """A ``TokenLogprobModel`` whose next-token distribution is a function of the text so far
    (a hash of it), peaked enough for groups to disagree."""

    description = "fake"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def start_decoding(self, prompts: Sequence[str], max_new_tokens: int) -> FakeModel:
        self.prompts = list(prompts)
        return self

    def logprobs(self) -> np.ndarray:
        return np.stack([self._logprobs(prompt) for prompt in self.prompts])

    def extend(self, tokens: np.ndarray) -> None:
        self.prompts = [prompt + f" w{token}" for prompt, token in zip(self.prompts, tokens, strict=True)]

    @staticmethod
    def _logprobs(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        logits = np.random.default_rng(seed).normal(0.0, 3.0, VOCABULARY)
        return logits - np.logaddexp.reduce(logits)

    def decode_tokens(self, tokens: Sequence[int]) -> str:
        return " ".join(f"w{token}" for token in tokens)

    def ends_line(self, token: int) -> bool:
        return token == STOP

    def check_token_logprobs(self, full_vocabulary: bool) -> None:
        pass

    def continuation_logprobs(self, prefix: str, texts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        return np.stack([[self._logprobs(prefix + text + c)[0] for c in continuations] for text in texts])


def corpus(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {LABEL: rng.choice(CLASSES, size=rows), TEXT: [f"private text {index}" for index in range(rows)]}
    )


def group_votes(table: pd.DataFrame, candidates: np.ndarray | None, seed: int) -> np.ndarray:
    """The exact votes on the first token of every demonstration, for ``table``."""
    groups = fewshot.partition(table, CLASSES, 2, 5, 3, np.random.default_rng(seed))
    prompts = fewshot.FewShotPrompts()
    texts = [
        prompts.generation(SCHEMA, slot.label, shots)
        for slot, shot_groups in zip(groups.slots, groups.shots, strict=True)
        for shots in shot_groups
    ]
    row_slot = np.repeat(np.arange(len(groups.slots)), [len(g) for g in groups.shots])
    logprobs = np.stack([FakeModel._logprobs(text) for text in texts])
    return fewshot.token_votes(logprobs, row_slot, candidates)


def test_each_example_falls_into_one_group_of_its_class_holding_at_most_the_shots():
    table = corpus(200)
    groups = fewshot.partition(table, CLASSES, 2, 5, 3, np.random.default_rng(1))
    assert [(slot.label, slot.index) for slot in groups.slots] == [(c, i) for c in CLASSES for i in range(2)]
    used = [text for shot_groups in groups.shots for shots in shot_groups for text in shots]
    assert len(used) == len(set(used)) > 50  # about 10 rows a group: most groups hold 3
    for slot, shot_groups in zip(groups.slots, groups.shots, strict=True):
        members = set(table.loc[table[LABEL] == slot.label, TEXT])
        assert len(shot_groups) == 5 and all(len(shots) <= 3 and set(shots) <= members for shots in shot_groups)


@pytest.mark.parametrize("candidates", [None, "top"])
def test_removing_a_record_moves_the_votes_by_at_most_the_sensitivity(candidates):
    """Add/remove: one group's prompt changes, and the votes of all demonstrations move by at most
    sqrt(2) in L2 (``vote_sensitivity``), whichever record is removed."""
    table = corpus(60)  # few rows a group: most removals change a prompt
    chosen = np.tile(np.arange(4), (4, 1)) if candidates else None
    changed = 0
    for removed in range(len(table)):
        # The groups are drawn row by row: the record removed goes last (the draws are exchangeable).
        order = [*(index for index in range(len(table)) if index != removed), removed]
        shuffled = table.iloc[order].reset_index(drop=True)
        moved = group_votes(shuffled, chosen, seed=3) - group_votes(shuffled.iloc[:-1], chosen, seed=3)
        assert np.linalg.norm(moved) <= vote_sensitivity("add_remove") + 1e-12
        assert np.count_nonzero(np.abs(moved).sum(axis=1) > 1e-12) <= 1  # one demonstration's votes
        changed += bool(np.any(moved))
    assert changed > 10


def test_vote_sensitivity_for_each_relation_and_privacy_unit():
    assert vote_sensitivity("add_remove") == pytest.approx(math.sqrt(2))
    assert vote_sensitivity("replace_one") == pytest.approx(2.0)
    assert vote_sensitivity("add_remove", rows_per_unit=3) == pytest.approx(math.sqrt(6))
    assert vote_sensitivity("replace_one", rows_per_unit=3) == pytest.approx(math.sqrt(12))


@pytest.mark.parametrize(
    ("epsilon", "delta", "tokens", "neighbouring"),
    [(1.0, default_delta(2280), 48, "add_remove"), (8.0, 1e-5, 64, "add_remove"), (4.0, 1e-6, 16, "replace_one")],
)
def test_token_votes_compose_to_the_target_epsilon_by_dp_accounting(epsilon, delta, tokens, neighbouring):
    """T token votes of sensitivity s and noise sigma, composed by dp-accounting's PLD
    accountant (noise multiplier sigma / s), spend the epsilon the plan was calibrated for."""
    sensitivity = vote_sensitivity(neighbouring)
    plan = calibrate(epsilon, delta, tokens, neighbouring=neighbouring, release_sensitivity=sensitivity)
    assert plan.releases == tokens and plan.count_sensitivity == sensitivity
    accountant = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier=plan.sigma / sensitivity), count=tokens)
    assert accountant.get_epsilon(delta) == pytest.approx(epsilon, rel=2e-3)
    assert plan.mu == pytest.approx(math.sqrt(tokens) * sensitivity / plan.sigma)


def test_generation_writes_one_line_per_demonstration_from_noisy_votes():
    table = corpus(200)
    groups = fewshot.partition(table, CLASSES, 1, 8, 2, np.random.default_rng(0))
    vote = fewshot.VoteSettings(max_new_tokens=6, top_k=5, sigma=1e-9, sensitivity=math.sqrt(2))
    released = fewshot.generate_demonstrations(
        FakeModel(),
        groups,
        fewshot.FewShotPrompts(),
        SCHEMA,
        vote,
        lambda t: NoiseSource(np.random.default_rng(t), secure=False),
    )
    assert list(released[LABEL]) == list(CLASSES)
    assert all(len(text.split()) <= 6 and "w0" not in text.split() for text in released[TEXT])
    # Without noise, each token is the argmax of the votes over the zero-shot prompt's top 5.
    model = FakeModel()
    slot = 0
    texts = [fewshot.FewShotPrompts().generation(SCHEMA, CLASSES[slot], shots) for shots in groups.shots[slot]]
    public = fewshot.FewShotPrompts().generation(SCHEMA, CLASSES[slot], ())
    top = np.argsort(-model._logprobs(public), kind="stable")[:5]
    first = top[np.exp(np.stack([model._logprobs(text) for text in texts]))[:, top].sum(axis=0).argmax()]
    assert released[TEXT][0].split()[0] == f"w{first}" or first == STOP


def test_only_tokens_the_public_prompt_names_can_be_chosen():
    """A server names its top tokens only: the candidates that the public (zero-shot) prompt did
    not name are filled by ids that depend on the groups' answers, and are never chosen."""

    class NamesOneToken(FakeModel):
        def logprobs(self) -> np.ndarray:
            table = super().logprobs()
            public = np.array(["private text" not in prompt for prompt in self.prompts])
            table[public] = -np.inf
            table[public, 7] = 0.0
            return table

    groups = fewshot.partition(corpus(100), CLASSES, 1, 4, 2, np.random.default_rng(0))
    vote = fewshot.VoteSettings(max_new_tokens=3, top_k=5, sigma=50.0, sensitivity=math.sqrt(2))
    noise = lambda t: NoiseSource(np.random.default_rng(t), secure=False)  # noqa: E731
    released = fewshot.generate_demonstrations(NamesOneToken(), groups, fewshot.FewShotPrompts(), SCHEMA, vote, noise)
    assert released[TEXT].tolist() == ["w7 w7 w7", "w7 w7 w7"]


def test_classification_picks_the_likeliest_label_continuation():
    held_out = corpus(20, seed=5)
    demonstrations = pd.DataFrame({LABEL: list(CLASSES), TEXT: ["a", "b"]})
    predicted = fewshot.classify(FakeModel(), fewshot.FewShotPrompts(), SCHEMA, demonstrations, held_out[TEXT])
    assert set(predicted) <= set(CLASSES) and len(predicted) == 20
    prompts = fewshot.FewShotPrompts()
    assert prompts.classification_prefix(SCHEMA, demonstrations).endswith("Text: b\nTopic: Sports\n\n")
    with pytest.raises(ValueError, match="may use only"):
        fewshot.FewShotPrompts(generation_open="{text}")
