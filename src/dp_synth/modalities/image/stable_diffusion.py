"""Stable Diffusion (or another diffusers text-to-image pipeline) behind the random and
variation APIs.

PE's image paper uses a text-to-image model as both APIs: the random API draws an image from a
prompt (text-to-image), the variation API redraws a survivor with the same prompt at a strength
(image-to-image: the survivor is noised part of the way and denoised again). Both pipelines share
their components (``AutoPipelineForImage2Image.from_pipe``), so the model is loaded once.

Images cross this module's boundary as numpy float32 arrays of shape (n, H, W, C) with values in
[0, 1], at the size and channels of the image set; the model draws at its own resolution, and
images are resized between the two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image, DiffusionPipeline

from dp_synth.modalities.image.diffusion import (
    Device,
    check_image_batch,
    check_strength,
    convert_channels,
    generate_in_batches,
    resize,
    resolve_device,
    seeded_generators,
    to_images,
)

logger = logging.getLogger(__name__)

PipelineCall = Callable[[slice, list[torch.Generator]], Any]
"""Calls a pipeline on the images a slice selects, with their generators; returns its output."""


class StableDiffusionImageGenerator:
    """Random (text-to-image) and variation (image-to-image) APIs over a saved diffusers
    text-to-image pipeline: Stable Diffusion 1.x or 2.x, SDXL, or any pipeline for which
    diffusers' ``AutoPipelineForImage2Image`` has an image-to-image counterpart.

    On CUDA the model runs in float16 (with attention slicing if asked); on the CPU in float32.

    Args:
        model: A local pipeline directory (as ``save_pretrained`` writes it), or a Hugging Face
            hub id when ``allow_download``.
        image_size: (height, width) of the images in and out.
        channels: Channels of the images in and out, 1 (grayscale) or 3 (RGB).
        allow_download: Whether the model may be fetched from the hub; otherwise only local files
            are read.
        device: ``"cuda"``, ``"cpu"``, or ``"auto"`` (CUDA when available).
        num_inference_steps: Denoising steps of a text-to-image sample; an image-to-image
            variation of strength ``s`` runs about ``s`` x that many (at least one).
        guidance_scale: Classifier-free guidance weight (1 or less: no guidance).
        batch_size: Images per pipeline call.
        resolution: Side of the square images the model draws; ``None``: the model's own.
        negative_prompt: What every image should not show, or ``None``.

    Attributes:
        resolution: The side the model draws at.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        image_size: tuple[int, int],
        channels: int,
        allow_download: bool = False,
        device: Device = "auto",
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        batch_size: int = 8,
        resolution: int | None = None,
        negative_prompt: str | None = None,
        attention_slicing: bool = False,
    ) -> None:
        if num_inference_steps < 1 or batch_size < 1:
            raise ValueError(
                f"num_inference_steps and batch_size must be >= 1, got {num_inference_steps}, {batch_size}"
            )
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.device = resolve_device(device)
        self.image_size, self.channels = tuple(image_size), channels
        self.num_inference_steps, self.guidance_scale = num_inference_steps, guidance_scale
        self.batch_size, self.negative_prompt = batch_size, negative_prompt
        self._text_to_image = _load_text_to_image(str(model), allow_download, self.device, attention_slicing)
        try:
            self._image_to_image = AutoPipelineForImage2Image.from_pipe(self._text_to_image)
        except ValueError as error:
            raise ValueError(
                f"{str(model)!r} holds a {type(self._text_to_image).__name__}, for which diffusers has no "
                f"image-to-image pipeline (the variation API needs one): {error}"
            ) from error
        for pipeline in (self._text_to_image, self._image_to_image):
            pipeline.set_progress_bar_config(disable=True)  # one bar over all the images instead
        self.resolution: int = resolution or _native_resolution(self._text_to_image)

    def random(self, prompts: Sequence[str], seed: int) -> np.ndarray:
        """Random API: one image per prompt, drawn from noise.

        Args:
            prompts: One prompt per image.
            seed: Seed of the noise; image ``i`` depends on ``seed``, ``i`` and its prompt, not on
                the batch size (up to float rounding).

        Returns:
            Images of shape (n, H, W, C), float32 in [0, 1].
        """

        def batch(selected: slice, generators: list[torch.Generator]) -> Any:
            return self._text_to_image(
                prompt=list(prompts[selected]),
                height=self.resolution,
                width=self.resolution,
                generator=generators,
                **self._common_arguments(),
            )

        return self._generate(len(prompts), batch, seed, "Stable Diffusion random")

    def vary(self, images: np.ndarray, prompts: Sequence[str], strength: float, seed: int) -> np.ndarray:
        """Variation API: each image redrawn from itself with its prompt (image-to-image).

        Args:
            images: Images of shape (n, H, W, C), values in [0, 1], at this generator's size and channels.
            prompts: One prompt per image (the one it was drawn with).
            strength: In (0, 1]: how far each image is noised before it is denoised again; near 0
                stays close to it (a strength below one step's share runs one step), 1 redraws it.
            seed: Seed of the noise.

        Returns:
            The varied images, same shape, float32 in [0, 1].
        """
        check_strength(strength)
        check_image_batch(images, len(prompts), self.image_size, self.channels)
        # diffusers runs int(strength * steps) steps: never let rounding make that 0.
        strength = min(1.0, max(strength, (1 + 1e-6) / self.num_inference_steps))

        def batch(selected: slice, generators: list[torch.Generator]) -> Any:
            return self._image_to_image(
                prompt=list(prompts[selected]),
                image=self._to_model(images[selected]),
                strength=strength,
                generator=generators,
                **self._common_arguments(),
            )

        return self._generate(len(prompts), batch, seed, "Stable Diffusion variation")

    def _common_arguments(self) -> dict[str, Any]:
        return {
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "negative_prompt": self.negative_prompt,
            "output_type": "np",
        }

    def _generate(self, total: int, call: PipelineCall, seed: int, what: str) -> np.ndarray:
        """Run ``call(selected, generators)`` on consecutive batches of images; convert what
        the pipeline returns to this generator's size and channels."""
        generators = seeded_generators(seed, total, self.device)

        def batch(begin: int, end: int) -> np.ndarray:
            with torch.inference_mode():
                drawn = call(slice(begin, end), generators[begin:end]).images
            samples = torch.from_numpy(np.asarray(drawn, dtype=np.float32)).permute(0, 3, 1, 2)
            return to_images(samples, self.image_size, self.channels)

        return generate_in_batches(total, self.batch_size, (*self.image_size, self.channels), batch, what)

    def _to_model(self, images: np.ndarray) -> torch.Tensor:
        """(n, H, W, C) images in [0, 1] to RGB (n, 3, R, R) at the model's resolution, in [0, 1]."""
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
        return resize(convert_channels(tensor, 3), (self.resolution, self.resolution)).clamp(0, 1)


def _load_text_to_image(
    model: str, allow_download: bool, device: torch.device, attention_slicing: bool
) -> DiffusionPipeline:
    """The text-to-image pipeline saved at ``model``, on ``device``: float16 on CUDA (with
    attention slicing if asked: less memory, slower), float32 on the CPU."""
    hint = "" if allow_download else " (only local files are read; set allow_download: true to fetch a hub id)"
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        pipeline = AutoPipelineForText2Image.from_pretrained(model, dtype=dtype, local_files_only=not allow_download)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"No diffusers text-to-image pipeline could be loaded from {model!r}{hint}: {error}"
        ) from error
    pipeline.to(device)
    if device.type == "cuda" and attention_slicing:
        pipeline.enable_attention_slicing()
    logger.info("Loaded %s from %s on %s (%s)", type(pipeline).__name__, model, device, dtype)
    return pipeline


def _native_resolution(pipeline: DiffusionPipeline) -> int:
    """The side of the images the pipeline draws by default (e.g. 512 for SD 1.5, 1024 for SDXL)."""
    latent_side = getattr(pipeline, "default_sample_size", None) or pipeline.unet.config.sample_size
    return int(latent_side) * int(pipeline.vae_scale_factor)
