"""DP fine-tuning baseline for the text benchmark: the recipe of Yue et al., "Synthetic Text
Generation with Differential Privacy: A Simple and Practical Recipe" (ACL 2023).

A causal LM is fine-tuned with DP-SGD on the private labelled texts, each training example a
label-conditioned prompt followed by the text, and the fine-tuned model then samples synthetic
texts per class from the same prompts. Only LoRA adapters (r = 8 on ``q_proj`` and ``v_proj``)
are trained, with Opacus: Poisson sampling, per-example clipping, Gaussian noise. The noise
multiplier is calibrated here with Google's ``dp_accounting`` (PLD accountant, add/remove-one
neighbouring), and Opacus' own accountant cross-checks the epsilon after training. The whole
fine-tuned model is the release; sampling from it costs no further budget.

Needs ``opacus``, ``peft``, ``torch`` and ``transformers``, imported only where used, so the
calibration imports without them.

Usage::

    python benchmarks/dp_finetune.py [--model DIR] [--epsilon 4] [--texts-per-class 50] [--max-steps 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dp_accounting
import pandas as pd
from dp_accounting.pld import pld_privacy_accountant

from dp_synth.modalities.text.modality import LABEL, TEXT, load_corpus, parse_corpus_schema
from dp_synth.pe.accounting import default_delta

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase

PROJECT_ROOT = Path(__file__).resolve().parents[1]
AGNEWS = PROJECT_ROOT / "data" / "01_raw" / "agnews"
DEFAULT_MODEL = PROJECT_ROOT / "data" / "06_models" / "smollm2-135m-instruct"
LORA_RANK = 8
LORA_TARGETS = ("q_proj", "v_proj")
SIGMA_RELATIVE_TOLERANCE = 1e-3
"""Bisection stops when the bracket's ends differ by this factor (epsilon then moves by ~0.3%)."""
OPACUS_EPSILON_SLACK = 1.10
"""Opacus' epsilon may exceed the target by at most this factor (its accountant is another bound)."""
GENERATION_BATCH = 32
IGNORED = -100
"""Label of a token that carries no loss (prompt, padding)."""


@dataclass(frozen=True)
class FineTuneResult:
    """What one DP fine-tuning run released and what it cost.

    Attributes:
        texts: The synthetic texts, columns ``label`` and ``text``.
        cpu_seconds: Process CPU seconds of the stages ``load``, ``train`` and ``generate``.
        epsilon_opacus: The epsilon at the target delta that Opacus' PRV accountant reports after training.
        noise_multiplier: The DP-SGD noise multiplier, calibrated with dp_accounting's PLD accountant.
        steps: The optimisation steps taken (each one Poisson-sampled batch).
        sample_rate: The Poisson sampling rate of a record in a step.
    """

    texts: pd.DataFrame
    cpu_seconds: dict[str, float]
    epsilon_opacus: float
    noise_multiplier: float
    steps: int
    sample_rate: float


def _pld_epsilon(sigma: float, delta: float, sample_rate: float, steps: int) -> float:
    """Return the PLD epsilon of ``steps`` Poisson-sampled Gaussian releases (add/remove one record)."""
    accountant = pld_privacy_accountant.PLDAccountant(dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
    event = dp_accounting.dp_event.PoissonSampledDpEvent(sample_rate, dp_accounting.dp_event.GaussianDpEvent(sigma))
    return accountant.compose(event, steps).get_epsilon(delta)


def noise_multiplier_for(epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """Return the smallest DP-SGD noise multiplier whose ``steps`` steps spend at most (epsilon, delta).

    Each step is a Poisson-sampled Gaussian mechanism on the clipped gradient sum (add/remove-one
    neighbouring), composed ``steps`` times with dp_accounting's PLD accountant; geometric
    bisection on sigma, returning the bracket's upper end, so the result never overspends.

    Args:
        epsilon: Target epsilon, > 0.
        delta: Target delta, in (0, 1).
        sample_rate: Probability that a record is in a step's batch, in (0, 1].
        steps: Number of optimisation steps, >= 1.

    Raises:
        ValueError: for a setting outside its range.
    """
    if not (epsilon > 0 and 0 < delta < 1 and 0 < sample_rate <= 1 and steps >= 1):
        raise ValueError(
            f"need epsilon > 0, 0 < delta < 1, 0 < sample_rate <= 1, steps >= 1; "
            f"got {epsilon}, {delta}, {sample_rate}, {steps}"
        )
    high = 1.0
    while _pld_epsilon(high, delta, sample_rate, steps) > epsilon:
        high *= 2
    low = high / 2
    while _pld_epsilon(low, delta, sample_rate, steps) <= epsilon:
        low, high = low / 2, low
    while high / low > 1 + SIGMA_RELATIVE_TOLERANCE:
        middle = math.sqrt(low * high)
        if _pld_epsilon(middle, delta, sample_rate, steps) > epsilon:
            low = middle
        else:
            high = middle
    return high


def prompt_for(label: str) -> str:
    """Return the label-conditioned prefix of a training example and of a sampling prompt.

    A plain prefix rather than the chat template: the recipe's control-code prompt, and the
    template's system turn would add some 30 tokens of compute to every example and step.
    """
    return f"Topic: {label}\n"


def _examples(
    tokenizer: PreTrainedTokenizerBase, train: pd.DataFrame, max_tokens: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Tokenise each row as prompt + text + eos, cut to ``max_tokens`` after the prompt.

    Returns (input ids, labels) per row; the labels mask the prompt, so the loss is on the text
    tokens (and eos) only: the prompt is the conditioning, not something to learn.
    """
    import torch

    prompts = {label: tokenizer(prompt_for(label), add_special_tokens=False).input_ids for label in set(train[LABEL])}
    examples = []
    for label, text in zip(train[LABEL], train[TEXT], strict=True):
        completion = [*tokenizer(text, add_special_tokens=False).input_ids, tokenizer.eos_token_id][:max_tokens]
        ids = torch.tensor(prompts[label] + completion)
        labels = ids.clone()
        labels[: len(prompts[label])] = IGNORED
        examples.append((ids, labels))
    return examples


def _padded(examples: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Collate examples into right-padded input ids, attention mask and labels."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    ids = pad_sequence([ids for ids, _ in examples], batch_first=True, padding_value=pad_id)
    labels = pad_sequence([labels for _, labels in examples], batch_first=True, padding_value=IGNORED)
    mask = pad_sequence([torch.ones_like(ids) for ids, _ in examples], batch_first=True, padding_value=0)
    return ids, mask, labels


def _per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return the batch mean of each example's mean next-token loss over its own text tokens.

    Normalising per example (not by the batch's token count) keeps each record's gradient
    independent of the other records in the batch, as the per-example clipping assumes.
    """
    import torch.nn.functional as F

    targets = labels[:, 1:]
    token_losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=IGNORED, reduction="none")
    return (token_losses.sum(dim=1) / (targets != IGNORED).sum(dim=1)).mean()


def _sample(
    model: PeftModel, tokenizer: PreTrainedTokenizerBase, class_sizes: Mapping[str, int], max_tokens: int
) -> pd.DataFrame:
    """Sample ``class_sizes[c]`` texts per class, in batches of the class's prompt (temperature 1, top-p 1)."""
    import torch

    tokenizer.padding_side = "left"
    rows = []
    with torch.no_grad():
        for label, size in class_sizes.items():
            for start in range(0, size, GENERATION_BATCH):
                count = min(GENERATION_BATCH, size - start)
                inputs = tokenizer([prompt_for(label)] * count, return_tensors="pt", padding=True)
                output = model.generate(
                    **inputs,
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    top_k=0,  # no top-k cut: the plain distribution
                    max_new_tokens=max_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                )
                new = output[:, inputs["input_ids"].shape[1] :]
                rows += [(label, text.strip()) for text in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return pd.DataFrame(rows, columns=[LABEL, TEXT])


def finetune_and_sample(
    model_dir: str | Path,
    train: pd.DataFrame,
    class_sizes: Mapping[str, int],
    *,
    epsilon: float,
    delta: float,
    seed: int,
    epochs: float = 1.0,
    expected_batch_size: int = 32,
    learning_rate: float = 1e-3,
    max_tokens: int = 64,
    max_grad_norm: float = 1.0,
    max_steps: int | None = None,
) -> FineTuneResult:
    """Fine-tune LoRA adapters of a causal LM with DP-SGD on ``train``, then sample synthetic texts.

    Steps sample each record with probability q = 1 / ceil(n / expected_batch_size) (Opacus'
    Poisson rate for that batch size), for round(epochs / q) steps, or ``max_steps`` if fewer;
    the noise multiplier is calibrated for exactly those steps, so the run spends (epsilon, delta).

    Args:
        model_dir: A local Hugging Face causal LM folder (with its tokenizer).
        train: The private texts, columns ``label`` and ``text``; one row is one record.
        class_sizes: Texts to sample per class name.
        epsilon: Privacy budget of the fine-tuning.
        delta: Its delta.
        seed: Seeds LoRA initialisation, sampling of batches, noise and text sampling
            (an experiment: the noise is not from a secure source).
        epochs: Passes over the data, in expectation.
        expected_batch_size: Expected Poisson batch size.
        learning_rate: AdamW learning rate of the LoRA parameters (1e-3: the usual order for DP LoRA).
        max_tokens: Text tokens per training example (cut after them) and new tokens per sample.
        max_grad_norm: Per-example gradient clipping norm.
        max_steps: Cap on the optimisation steps (smoke runs).

    Raises:
        RuntimeError: if Opacus' accountant reports an epsilon above the target by more than 10%.
    """
    import torch
    from opacus import PrivacyEngine
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    seconds = {}
    start = time.process_time()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=LORA_RANK, target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM"))
    examples = _examples(tokenizer, train, max_tokens)
    seconds["load"] = time.process_time() - start

    start = time.process_time()
    loader = DataLoader(
        examples, batch_size=expected_batch_size, collate_fn=lambda batch: _padded(batch, tokenizer.pad_token_id)
    )
    sample_rate = 1 / len(loader)  # the rate Opacus' Poisson loader and accountant use
    steps = max(1, round(epochs * len(loader)))
    steps = min(steps, max_steps) if max_steps is not None else steps
    sigma = noise_multiplier_for(epsilon, delta, sample_rate, steps)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    engine = PrivacyEngine(accountant="prv")
    private_model, optimizer, private_loader = engine.make_private(
        module=model,
        optimizer=torch.optim.AdamW(trainable, lr=learning_rate),
        data_loader=loader,
        noise_multiplier=sigma,
        max_grad_norm=max_grad_norm,
        poisson_sampling=True,
    )
    private_model.train()
    batches = itertools.chain.from_iterable(itertools.repeat(private_loader))
    with warnings.catch_warnings():
        # The frozen embeddings' output needs no gradient, so torch warns that the first LoRA layer's
        # backward hook fires on its output's gradient only: the one Opacus' per-example gradients use.
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        for ids, mask, labels in itertools.islice(batches, steps):
            optimizer.zero_grad()
            _per_example_loss(private_model(input_ids=ids, attention_mask=mask).logits, labels).backward()
            optimizer.step()
    epsilon_opacus = float(engine.get_epsilon(delta))
    seconds["train"] = time.process_time() - start
    if epsilon_opacus > OPACUS_EPSILON_SLACK * epsilon:
        raise RuntimeError(f"Opacus' accountant reports epsilon {epsilon_opacus:.3f} for a target of {epsilon}")

    start = time.process_time()
    model.eval()
    texts = _sample(model, tokenizer, class_sizes, max_tokens)
    seconds["generate"] = time.process_time() - start
    return FineTuneResult(texts, seconds, epsilon_opacus, sigma, steps, sample_rate)


def main() -> None:
    """Fine-tune on the bundled AG News sample and print costs, accounting and a few texts per class."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--epsilon", type=float, default=4.0)
    parser.add_argument("--delta", type=float, default=None, help="default: 1/(n ln n), n the public row count")
    parser.add_argument("--texts-per-class", type=int, default=50)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32, help="expected Poisson batch size")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=3, help="texts printed per class")
    args = parser.parse_args()

    schema = parse_corpus_schema(json.loads((AGNEWS / "schema.json").read_text()))
    train = load_corpus(pd.read_csv(AGNEWS / "agnews_train.csv"), schema)
    delta = args.delta if args.delta is not None else default_delta(schema.public_row_count)
    result = finetune_and_sample(
        args.model,
        train,
        dict.fromkeys(schema.classes, args.texts_per_class),
        epsilon=args.epsilon,
        delta=delta,
        seed=args.seed,
        epochs=args.epochs,
        expected_batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        max_steps=args.max_steps,
    )
    print(", ".join(f"{stage} {value:.1f} s" for stage, value in result.cpu_seconds.items()), "(CPU)")
    print(
        f"{result.steps} steps at sample rate {result.sample_rate:.5f}, noise multiplier {result.noise_multiplier:.4f}; "
        f"epsilon {args.epsilon} (PLD calibration), {result.epsilon_opacus:.4f} (Opacus PRV), delta {delta:.3g}"
    )
    for label, texts in result.texts.groupby(LABEL, sort=False)[TEXT]:
        print(f"\n{label}:")
        for text in texts.head(args.show):
            print(f"  - {text}")


if __name__ == "__main__":
    main()
