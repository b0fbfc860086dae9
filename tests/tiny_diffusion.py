"""A tiny, randomly initialised diffusion pipeline saved to disk, for tests that must not download.

The weights are random, so the images are noise-like; what the tests check is the plumbing (loading
from a directory, shapes, seeding, class conditioning, SDEdit-style variation), not image quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel


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
