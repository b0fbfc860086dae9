"""Tiny, randomly initialised models for tests (a causal LM, an image encoder): built locally,
nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, ViTConfig, ViTImageProcessorPil, ViTModel

END_OF_TEXT = "<|endoftext|>"

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A customer review: the product arrived on time and works well.",
    "Patients reported mild symptoms after the second dose.",
    "Stock prices rose sharply on Monday after the announcement.",
    "Write a short description of a sunny day at the beach.",
    "Private evolution generates synthetic data with differential privacy.",
]


def _train_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on a few sentences: any text encodes, nothing is downloaded.

    It has an end-of-text token (also used as beginning and unknown) and deliberately no padding
    token, like GPT-2.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, unk_token=END_OF_TEXT
    )


def build_tiny_causal_lm(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny random GPT-2 and a matching tokenizer into ``directory``, loadable by ``from_pretrained``.

    The model has 2 layers of width 32 and a vocabulary of 384 byte-level BPE tokens; its weights
    are drawn wider than GPT-2's (std 0.3, not 0.02) so that different prompts lead to different
    greedy completions. Its completions are gibberish, all that tests of the generation plumbing
    need. Building it takes about 0.1 s once ``transformers`` is imported.

    Args:
        directory: Where to save them (created if missing).
        seed: Seed of the model's random initialisation.

    Returns:
        ``directory``, for ``from_pretrained`` or ``HuggingFaceGenerator(model=...)``.
    """
    import torch

    tokenizer = _train_tokenizer(vocab_size=384)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=1024,
        n_embd=32,
        n_layer=2,
        n_head=2,
        initializer_range=0.3,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_tiny_image_encoder(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny randomly initialised ViT (one layer, width 32, 16x16 inputs) with its image
    processor in ``directory``, as a user's local pretrained encoder would be saved."""
    import torch

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTModel(config).save_pretrained(directory)
    ViTImageProcessorPil(size={"height": 16, "width": 16}).save_pretrained(directory)
    return directory
