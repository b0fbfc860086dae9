"""Tiny, randomly initialised diffusion pipelines saved to disk (a UNet2DModel pipeline and a Stable
Diffusion pipeline), for tests that must not download.

The weights are random, so the images are noise-like; what the tests check is the plumbing (loading
from a directory, shapes, seeding, class conditioning, SDEdit-style variation), not image quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from diffusers import (
    AutoencoderKL,
    DDIMPipeline,
    DDIMScheduler,
    DDPMPipeline,
    DDPMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
    UNet2DModel,
)


def build_tiny_diffusion_model(
    directory: Path,
    *,
    classes: int | None = 10,
    sample_size: int = 8,
    channels: int = 1,
    scheduler: Literal["ddpm", "ddim"] = "ddpm",
) -> Path:
    """Save a tiny ``UNet2DModel`` and scheduler as a diffusers pipeline directory.

    Args:
        directory: Where to save the pipeline (created if missing).
        classes: Number of classes of a class-conditional UNet (``num_class_embeds``); ``None`` for
            an unconditional one.
        sample_size: Height and width of the UNet's square images (a multiple of 2).
        channels: Image channels of the UNet (1 or 3).
        scheduler: ``"ddpm"`` saves a ``DDPMPipeline``, ``"ddim"`` a ``DDIMPipeline``.

    Returns:
        ``directory``, which ``DiffusionImageGenerator`` can load.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = UNet2DModel(
            sample_size=sample_size,
            in_channels=channels,
            out_channels=channels,
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            block_out_channels=(8, 16),
            layers_per_block=1,
            norm_num_groups=4,
            num_class_embeds=classes,
        )
    if scheduler == "ddpm":
        pipeline = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100))
    else:
        pipeline = DDIMPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=100))
    pipeline.save_pretrained(directory)
    return Path(directory)


def build_tiny_stable_diffusion(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny, randomly initialised Stable Diffusion pipeline (the real classes, tiny sizes).

    A ``UNet2DConditionModel`` (8 x 8 latents, widths 8 and 16, one cross-attention block), an
    ``AutoencoderKL`` (4 latent channels, downsampling 2x: the model draws 16 x 16 RGB images),
    a one-layer ``CLIPTextModel`` of width 32 and a ``CLIPTokenizer`` whose vocabulary is the 256
    byte symbols (alone and word-final) with no merges, made here (one token per character, 77 at
    most, as CLIP's), and a DDIM scheduler. Saved by
    ``StableDiffusionPipeline.save_pretrained`` without a safety checker, it loads as SD 1.x does.

    Args:
        directory: Where to save the pipeline (created if missing).
        seed: Seed of the random weights.

    Returns:
        ``directory``, which ``StableDiffusionImageGenerator`` can load.
    """
    from tokenizers import pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    words = [*symbols, *(symbol + "</w>" for symbol in symbols), "<|startoftext|>", "<|endoftext|>"]
    vocab = {word: index for index, word in enumerate(words)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 16),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=2,
            norm_num_groups=4,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 16),
            layers_per_block=1,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            norm_num_groups=4,
            sample_size=16,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(vocab),
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=1,
                num_attention_heads=2,
                max_position_embeddings=77,
                bos_token_id=vocab["<|startoftext|>"],
                eos_token_id=vocab["<|endoftext|>"],
                pad_token_id=vocab["<|endoftext|>"],
            )
        )
    scheduler = DDIMScheduler(num_train_timesteps=100, steps_offset=1, clip_sample=False, set_alpha_to_one=False)
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)
    return Path(directory)
